"""The BUS-UCLM reader on synthetic files that follow the dataset's description (custom/data/bus_uclm.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from custom.data.bus_uclm import mask_colour_class, prepare_bus_uclm
from custom.errors import DataError

REPO = Path(__file__).resolve().parents[1]
MASK_SHAPE = (40, 56)  # stands for BUS-UCLM's 856x606 masks
GREEN, RED = (0, 255, 0), (255, 0, 0)
# name, label, lesion colour, image mode, image shape
CASES = [
    ("ANAT_000.png", "Benign", GREEN, "RGB", MASK_SHAPE),
    ("ANAT_001.png", "Benign", GREEN, "RGB", MASK_SHAPE),
    ("BOBO_000.png", "Malignant", RED, "RGB", MASK_SHAPE),
    ("BOBO_001.png", "Malignant", RED, "RGBA", (30, 42)),  # RGBA and smaller than its mask
    ("CICO_000.png", "Normal", None, "RGB", MASK_SHAPE),
    ("CICO_001.png", "Normal", None, "RGBA", (30, 42)),
    ("CICO_002.png", "Normal", None, "RGB", MASK_SHAPE),
]


def _lesion(k: int) -> np.ndarray:
    mask = np.zeros(MASK_SHAPE, dtype=bool)
    mask[5 + k : 15 + 2 * k, 10 : 20 + 3 * k] = True
    return mask


def _write_info(root: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["Image;Resolution;Label;Doppler;Marks;Combined"] + [f"{n};856x606;{label};No;No;No" for n, label in rows]
    (root / "INFO.csv").write_bytes("\r\n".join(lines).encode("utf-8-sig"))  # with the byte-order mark


@pytest.fixture()
def src(tmp_path) -> Path:
    root = tmp_path / "BUS-UCLM"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for k, (name, _, colour, mode, shape) in enumerate(CASES):
        pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        if mode == "RGBA":
            pixels = np.dstack([pixels, np.full(shape, 255, np.uint8)])
        Image.fromarray(pixels).save(root / "images" / name)
        mask = np.zeros((*MASK_SHAPE, 3), dtype=np.uint8)
        if colour:
            mask[_lesion(k)] = colour
        Image.fromarray(mask).save(root / "masks" / name)
    _write_info(root, [(n, label) for n, label, *_ in CASES])
    return root


def test_classes_from_info_merged_masks_and_resized_images(src, tmp_path):
    assert (src / "INFO.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    out = tmp_path / "out"
    summary = prepare_bus_uclm(str(src), str(out), folds=3)
    records = {r["id"]: r for r in json.loads((out / "datalist.json").read_text())["all"]}
    assert summary["dataset"] == "BUS-UCLM" and summary["classes"] == {"benign": 2, "malignant": 2, "normal": 3}
    assert [records[n[:-4]]["class"] for n, *_ in CASES] == [1, 1, 2, 2, 0, 0, 0]
    for k, (name, _, colour, *_) in enumerate(CASES):
        label = np.asarray(Image.open(out / records[name[:-4]]["label"]))
        assert label.shape == MASK_SHAPE and label.dtype == np.uint8
        assert np.array_equal(label > 0, _lesion(k) if colour else np.zeros(MASK_SHAPE, bool)), name
        image = Image.open(out / records[name[:-4]]["image"])
        assert image.mode == "L" and image.size == (MASK_SHAPE[1], MASK_SHAPE[0])
    assert summary["adjusted"] == [
        {"file": "images/BOBO_001.png", "note": "image 42x30 resized to its mask's 56x40 (bicubic)"},
        {"file": "images/CICO_001.png", "note": "image 42x30 resized to its mask's 56x40 (bicubic)"},
    ]


def test_info_may_name_images_without_suffix(src, tmp_path):
    _write_info(src, [(n[:-4], label) for n, label, *_ in CASES])
    assert prepare_bus_uclm(str(src), str(tmp_path / "out"), folds=3)["records"] == 7


def test_mask_colour_class():
    mask = np.zeros((4, 4, 3), dtype=np.uint8)
    assert mask_colour_class(mask) == "normal"
    mask[0, :3] = GREEN
    mask[1, 0] = RED  # a stray pixel of the other colour does not flip the majority
    assert mask_colour_class(mask) == "benign"
    mask[2:, :] = RED
    assert mask_colour_class(mask) == "malignant"
    with pytest.raises(DataError, match="neither mostly green"):
        mask_colour_class(np.full((2, 2, 3), 255, np.uint8))


def _colour_disagrees(src):
    mask = np.zeros((*MASK_SHAPE, 3), np.uint8)
    mask[_lesion(0)] = RED
    Image.fromarray(mask).save(src / "masks" / "ANAT_000.png")
    return "masks/ANAT_000.png", "the mask says malignant but INFO.csv labels the image benign"


def _normal_with_lesion(src):
    mask = np.zeros((*MASK_SHAPE, 3), np.uint8)
    mask[_lesion(0)] = GREEN
    Image.fromarray(mask).save(src / "masks" / "CICO_002.png")
    return "masks/CICO_002.png", "the mask says benign but INFO.csv labels the image normal"


def _unknown_label(src):
    _write_info(src, [(n, "Suspicious" if n == "ANAT_001.png" else label) for n, label, *_ in CASES])
    return "INFO.csv:3", "unknown label 'Suspicious'"


def _missing_mask(src):
    (src / "masks" / "BOBO_000.png").unlink()
    return "images/BOBO_000.png", "missing mask"


def _unlisted_image(src):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(src / "images" / "ZZZZ_000.png")
    return "images/ZZZZ_000.png", "not listed in INFO.csv"


def _listed_but_missing(src):
    (src / "images" / "CICO_000.png").unlink()
    (src / "masks" / "CICO_000.png").unlink()
    return "images/CICO_000.png", "listed in INFO.csv (line 6) but missing"


def _duplicate_row(src):
    _write_info(src, [(n, label) for n, label, *_ in CASES] + [("ANAT_000.png", "Benign")])
    return "ANAT_000.png", "duplicate id 'ANAT_000'"


def _non_image(src):
    (src / "images" / "Thumbs.db").write_bytes(b"\x00")
    return "images/Thumbs.db", "not an image file"


BAD = [
    _colour_disagrees,
    _normal_with_lesion,
    _unknown_label,
    _missing_mask,
    _unlisted_image,
    _listed_but_missing,
    _duplicate_row,
    _non_image,
]


@pytest.mark.parametrize("breakage", BAD, ids=[b.__name__.strip("_") for b in BAD])
def test_bad_input(src, tmp_path, breakage):
    file, problem = breakage(src)
    with pytest.raises(DataError) as error:
        prepare_bus_uclm(str(src), str(tmp_path / "out"), folds=3)
    assert file in str(error.value) and problem in str(error.value)
    summary = prepare_bus_uclm(str(src), str(tmp_path / "out"), folds=3, skip_bad=True)
    assert any(file in e["file"] and problem in e["reason"] for e in summary["excluded"]), summary["excluded"]


def test_missing_layout_parts(src, tmp_path):
    (src / "INFO.csv").unlink()
    with pytest.raises(DataError, match=r"INFO\.csv does not exist"):
        prepare_bus_uclm(str(src), str(tmp_path / "out"))
    (tmp_path / "partial" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="masks: folder does not exist"):
        prepare_bus_uclm(str(tmp_path / "partial"), str(tmp_path / "out"))
    with pytest.raises(DataError, match="BUS-UCLM folder does not exist"):
        prepare_bus_uclm(str(tmp_path / "nowhere"), str(tmp_path / "out"))


def test_empty_images_folder(tmp_path):
    for name in ("images", "masks"):
        (tmp_path / "src" / name).mkdir(parents=True)
    with pytest.raises(DataError, match="images: empty folder"):
        prepare_bus_uclm(str(tmp_path / "src"), str(tmp_path / "out"))


def test_cli(src, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/prepare_data.py",
            "bus_uclm",
            "--src",
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--folds",
            "3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "BUS-UCLM: 7 images" in proc.stdout and "adjusted: 2 images" in proc.stdout


def test_folds_keep_every_patient_on_one_side_of_every_split(tmp_path):
    """BUS-UCLM names frames ``<patient>_<frame>.png``: consecutive frames of a patient never straddle a split."""
    root = tmp_path / "BUS-UCLM"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for p in range(12):
        patient = "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 4)) + f"{p:02d}"
        label, colour = [("Benign", GREEN), ("Malignant", RED), ("Normal", None)][p % 3]
        for frame in range(int(rng.integers(2, 6))):
            name = f"{patient}_{frame:03d}.png"
            Image.fromarray(rng.integers(0, 256, (*MASK_SHAPE, 3), dtype=np.uint8)).save(root / "images" / name)
            mask = np.zeros((*MASK_SHAPE, 3), dtype=np.uint8)
            if colour:
                mask[_lesion(frame)] = colour
            Image.fromarray(mask).save(root / "masks" / name)
            rows.append((name, label))
    _write_info(root, rows)
    out = tmp_path / "out"
    summary = prepare_bus_uclm(str(root), str(out), folds=5)
    assert summary["grouping"] == {"by": ["patient"], "patients": 12, "groups": 12}
    for k in range(5):
        split = json.loads((out / f"fold{k}.json").read_text())
        sides = [{r["patient"] for r in split[name]} for name in ("training", "validation", "test")]
        assert all(sides) and not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2]), k
        for records in split.values():
            if isinstance(records, list):
                assert all(r["patient"] == r["id"].split("_")[0] for r in records)
    unaware = prepare_bus_uclm(str(root), str(tmp_path / "by_image"), folds=5, patients=False)
    assert unaware["grouping"] == {"by": [], "patients": None, "groups": len(rows)}
