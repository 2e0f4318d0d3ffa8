"""The BUSI reader and the shared preparation pipeline on tiny synthetic BUSI folders (custom/data/busi.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

from custom.data.busi import prepare_busi, read_curated_list
from custom.errors import DataError

COUNTS = {"benign": 5, "malignant": 3, "normal": 3}
FIELDS = {"id", "image", "label", "class_name", "class", "lesion", "lesion_area", "size_tier", "group", "source"}


def _picture(seed: int, shape: tuple[int, int] = (40, 56)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _box(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


@pytest.fixture()
def src(tmp_path) -> Path:
    """A BUSI-layout folder with BUSI's quirks: grayscale and RGB images, 1-bit, RGB and RGBA masks,
    ``_mask_1`` / ``_mask_2`` extra lesions, all-zero RGB masks for normal images."""
    root = tmp_path / "busi"
    for c, (class_name, count) in enumerate(COUNTS.items()):
        (root / class_name).mkdir(parents=True)
        for n in range(1, count + 1):
            shape = (40, 56)
            pixels = _picture(10 * c + n, shape)
            image = np.dstack([pixels] * 3) if n == 1 else pixels  # "(1)" of each class is RGB
            Image.fromarray(image).save(root / class_name / f"{class_name} ({n}).png")
            if class_name == "normal":
                Image.fromarray(np.zeros((*shape, 3), np.uint8)).save(
                    root / class_name / f"{class_name} ({n})_mask.png"
                )
                continue
            Image.fromarray(_box(shape, 2 * n, 3 * n, 4 + 3 * n)).save(
                root / class_name / f"{class_name} ({n})_mask.png"
            )
    extra = _box((40, 56), 30, 40, 6)
    Image.fromarray(np.dstack([extra * 255] * 3 + [np.full(extra.shape, 255)]).astype(np.uint8)).save(
        root / "benign" / "benign (2)_mask_1.png"
    )
    Image.fromarray(_box((40, 56), 0, 50, 3)).save(root / "benign" / "benign (2)_mask_2.png")
    return root


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_records_fields_and_merged_masks(src, tmp_path):
    out = tmp_path / "out"
    summary = prepare_busi(str(src), str(out), dedup="none")
    records = _load(out / "datalist.json")["all"]
    assert len(records) == 11 and all(set(r) == FIELDS for r in records)
    by_id = {r["id"]: r for r in records}
    assert by_id["benign_001"]["source"] == "benign/benign (1).png"
    assert {(r["class_name"], r["class"], r["lesion"]) for r in records} == {
        ("benign", 1, 1),
        ("malignant", 2, 1),
        ("normal", 0, 0),
    }
    assert all(r["size_tier"] == "none" and r["lesion_area"] == 0 for r in records if r["class_name"] == "normal")
    # _mask, _mask_1 (RGBA) and _mask_2 merged by OR, written as single-channel 0/255
    label = Image.open(out / by_id["benign_002"]["label"])
    assert label.mode == "L" and label.size == (56, 40)
    expected = _box((40, 56), 4, 6, 10) | _box((40, 56), 30, 40, 6) | _box((40, 56), 0, 50, 3)
    assert np.array_equal(np.asarray(label), expected * 255)
    # images: grayscale at the original resolution, RGB converted exactly (equal channels)
    image = Image.open(out / by_id["benign_001"]["image"])
    assert image.mode == "L" and np.array_equal(np.asarray(image), _picture(1))
    assert summary["classes"] == {"benign": 5, "malignant": 3, "normal": 3}
    assert summary["lesion_positive"] == 8 and summary["excluded"] == [] and summary["duplicates"] is None
    assert summary["produced_by"]["tool"] == "custom.data.busi.prepare_busi"


def test_lesion_area_and_tiers_use_the_thresholds(src, tmp_path):
    summary = prepare_busi(str(src), str(tmp_path / "out"), dedup="none")
    records = _load(tmp_path / "out" / "datalist.json")["all"]
    alpha, beta = summary["size_thresholds"]["alpha"], summary["size_thresholds"]["beta"]
    areas = sorted(r["lesion_area"] for r in records if r["lesion"])
    assert (alpha, beta) == tuple(np.quantile(areas, [0.33, 0.66]))
    for r in records:
        expected = (
            "none"
            if not r["lesion"]
            else "small" if r["lesion_area"] < alpha else "medium" if r["lesion_area"] < beta else "large"
        )
        assert r["size_tier"] == expected


def test_fold_files_load_with_monai_relative_to_their_folder(src, tmp_path):
    from monai.data import load_decathlon_datalist

    out = tmp_path / "out"
    prepare_busi(str(src), str(out), dedup="none", folds=3, seed=1)
    moved = shutil.move(str(out), str(tmp_path / "moved"))  # paths are relative: the folder can move
    tested = []
    for k in range(3):
        path = Path(moved) / f"fold{k}.json"
        fold = _load(path)
        assert fold["fold"] == k and fold["num_folds"] == 3 and fold["seed"] == 1 and "produced_by" in fold
        for split in ("training", "validation", "test"):
            for record in load_decathlon_datalist(str(path), data_list_key=split, base_dir=str(path.parent)):
                assert Path(record["image"]).is_file() and Path(record["label"]).is_file()
        tested += [r["id"] for r in fold["test"]]
    assert sorted(tested) == sorted(r["id"] for r in _load(Path(moved) / "datalist.json")["all"])
    assert not (Path(moved) / "fold3.json").exists()


def test_rerun_with_fewer_folds_removes_stale_fold_files(src, tmp_path):
    out = tmp_path / "out"
    prepare_busi(str(src), str(out), dedup="none", folds=5)
    prepare_busi(str(src), str(out), dedup="none", folds=3)
    assert sorted(p.name for p in out.glob("fold*.json")) == ["fold0.json", "fold1.json", "fold2.json"]


def test_curated_list_keeps_its_images_and_scores_the_duplicate_search(src, tmp_path):
    # plant two exact copies: benign (5) = benign (4) and malignant (3) = benign (3) (BUSI has such cross-class copies)
    shutil.copy(src / "benign" / "benign (4).png", src / "benign" / "benign (5).png")
    shutil.copy(src / "benign" / "benign (3).png", src / "malignant" / "malignant (3).png")
    shutil.copy(src / "benign" / "benign (3)_mask.png", src / "malignant" / "malignant (3)_mask.png")
    curated = tmp_path / "curated.csv"
    keep = ["benign;1", "benign;2", "malignant;1", "malignant;2", "normal;1", "normal;2", "normal;3"]
    curated.write_bytes(("class;id\r\n" + "\r\n".join(keep) + "\r\n").encode())  # CRLF, as the real file
    assert read_curated_list(curated) == {
        "benign_001",
        "benign_002",
        "malignant_001",
        "malignant_002",
        "normal_001",
        "normal_002",
        "normal_003",
    }
    summary = prepare_busi(str(src), str(tmp_path / "out"), curated=str(curated), dedup="auto")
    assert summary["dataset"] == "Curated BUSI" and summary["records"] == 7
    assert len([e for e in summary["excluded"] if "Curated BUSI" in e["reason"]]) == 4
    found = summary["duplicates"]
    assert sorted(map(sorted, found["groups"])) == [["benign_003", "malignant_003"], ["benign_004", "benign_005"]]
    assert found["against_reference"]["recall"] == 1.0 and found["against_reference"]["precision"] == 1.0


def test_duplicate_groups_stay_in_one_chunk(src, tmp_path):
    for n in (4, 5):
        shutil.copy(src / "benign" / "benign (1).png", src / "benign" / f"benign ({n}).png")
    prepare_busi(str(src), str(tmp_path / "out"), dedup="auto", folds=3)
    records = _load(tmp_path / "out" / "datalist.json")["all"]
    group = {r["id"]: r["group"] for r in records}
    assert group["benign_001"] == group["benign_004"] == group["benign_005"]
    assert len(set(group.values())) == len(records) - 2
    for k in range(3):
        fold = _load(tmp_path / "out" / f"fold{k}.json")
        sides = [{r["group"] for r in fold[s]} for s in ("training", "validation", "test")]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def _missing_mask(src):
    (src / "benign" / "benign (3)_mask.png").unlink()
    return "benign (3).png", "missing mask"


def _size_mismatch(src):
    Image.fromarray(np.zeros((30, 30), bool)).save(src / "malignant" / "malignant (2)_mask.png")
    return "malignant (2)_mask.png", "mask is 30x30 but its image is 56x40"


def _zero_byte(src):
    (src / "normal" / "normal (2).png").write_bytes(b"")
    return "normal (2).png", "zero-byte file"


def _unreadable(src):
    (src / "normal" / "normal (3).png").write_bytes(b"\x89PNG garbage")
    return "normal (3).png", "not a readable image"


def _non_image(src):
    (src / "benign" / "notes.txt").write_text("x")
    return "notes.txt", "not an image file"


def _unknown_class(src):
    (src / "unsure").mkdir()
    shutil.copy(src / "benign" / "benign (1).png", src / "unsure" / "unsure (1).png")
    return "unsure", "unknown class folder"


def _empty_class_folder(src):
    shutil.rmtree(src / "normal")
    (src / "normal").mkdir()
    return "normal", "empty class folder"


def _duplicate_id(src):
    shutil.copy(src / "benign" / "benign (2).png", src / "benign" / "benign (02).png")
    return "benign (0", "duplicate id 'benign_002'"


def _orphan_mask(src):
    shutil.copy(src / "benign" / "benign (1)_mask.png", src / "benign" / "benign (9)_mask.png")
    return "benign (9)_mask.png", "mask without its image"


def _normal_with_lesion(src):
    Image.fromarray(_box((40, 56), 1, 1, 5)).save(src / "normal" / "normal (1)_mask.png")
    return "normal (1)_mask.png", "labelled normal but its mask has lesion pixels"


BAD = [
    _missing_mask,
    _size_mismatch,
    _zero_byte,
    _unreadable,
    _non_image,
    _unknown_class,
    _empty_class_folder,
    _duplicate_id,
    _orphan_mask,
    _normal_with_lesion,
]


@pytest.mark.parametrize("breakage", BAD, ids=[b.__name__.strip("_") for b in BAD])
def test_bad_input_names_the_file_and_problem(src, tmp_path, breakage):
    file, problem = breakage(src)
    with pytest.raises(DataError) as error:
        prepare_busi(str(src), str(tmp_path / "out"), dedup="none", folds=3)
    assert file in str(error.value) and problem in str(error.value)
    assert not (tmp_path / "out" / "datalist.json").exists()


@pytest.mark.parametrize("breakage", BAD, ids=[b.__name__.strip("_") for b in BAD])
def test_skip_bad_lists_bad_cases_and_prepares_the_rest(src, tmp_path, breakage):
    file, problem = breakage(src)
    summary = prepare_busi(str(src), str(tmp_path / "out"), dedup="none", folds=3, skip_bad=True)
    assert any(file in e["file"] + e["reason"] and problem in e["file"] + e["reason"] for e in summary["excluded"])
    records = _load(tmp_path / "out" / "datalist.json")["all"]
    assert len(records) == summary["records"] >= 7
    assert sorted(p.stem for p in (tmp_path / "out" / "images").iterdir()) == sorted(r["id"] for r in records)


def test_a_failed_run_leaves_the_previous_output_untouched(src, tmp_path):
    out = tmp_path / "out"
    prepare_busi(str(src), str(out), dedup="none")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (src / "benign" / "benign (4).png").write_bytes(b"")
    with pytest.raises(DataError, match="zero-byte"):
        prepare_busi(str(src), str(out), dedup="none")
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_missing_or_empty_source_folder(tmp_path):
    with pytest.raises(DataError, match="BUSI folder does not exist"):
        prepare_busi(str(tmp_path / "nowhere"), str(tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folder"):
        prepare_busi(str(tmp_path / "empty"), str(tmp_path / "out"))


def test_bad_options(src, tmp_path):
    with pytest.raises(DataError, match="--dedup"):
        prepare_busi(str(src), str(tmp_path / "out"), dedup="maybe")
    with pytest.raises(DataError, match="--folds"):
        prepare_busi(str(src), str(tmp_path / "out"), folds=2)
    with pytest.raises(DataError, match="folds need at least"):
        prepare_busi(str(src), str(tmp_path / "out"), dedup="none", folds=12)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_script("prepare_data.py", *args)


def test_two_masks_with_one_number_are_refused_not_merged(src, tmp_path):
    """``benign (1)_mask.png`` beside ``benign (1)_mask.bmp``: two versions of one annotation, not two lesions."""
    Image.open(src / "benign" / "benign (1)_mask.png").save(src / "benign" / "benign (1)_mask.bmp")
    with pytest.raises(
        DataError, match=r"several masks with one number \(benign \(1\)_mask.bmp, benign \(1\)_mask.png\)"
    ):
        prepare_busi(str(src), str(tmp_path / "out"), dedup="none", folds=3)


def test_cli_bad_input_is_one_line_and_nonzero_and_skip_bad_goes_on(src, tmp_path):
    (src / "benign" / "benign (3)_mask.png").unlink()
    proc = _cli("busi", "--src", str(src), "--out", str(tmp_path / "out"), "--dedup", "none", "--folds", "3")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(
        f"error: {src / 'benign' / 'benign (3).png'}: missing mask"
    )
    assert not (tmp_path / "out" / "datalist.json").exists()
    proc = _cli(
        "busi", "--src", str(src), "--out", str(tmp_path / "out"), "--dedup", "none", "--folds", "3", "--skip-bad"
    )
    assert proc.returncode == 0, proc.stderr
    assert "BUSI: 10 images" in proc.stdout and "excluded: 1 files" in proc.stdout
