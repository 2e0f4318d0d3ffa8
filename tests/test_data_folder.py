"""The reader of any image + mask folders, with classes from a CSV or from the masks (custom/data/folder.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

from custom.data.folder import prepare_folder
from custom.errors import DataError

SHAPE = (24, 32)
# stem, has lesion, mask file name pattern
CASES = [
    ("a", True, "{}.png"),
    ("b", True, "{}_mask.png"),
    ("c", False, "{}.png"),
    ("d", True, "{}.bmp"),
    ("e", False, "{}_mask.png"),
    ("f", True, "{}.png"),
]


@pytest.fixture()
def data(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("images", "masks"):
        (tmp_path / name).mkdir()
    for k, (stem, lesion, mask_name) in enumerate(CASES):
        Image.fromarray(rng.integers(0, 256, SHAPE, dtype=np.uint8)).save(
            tmp_path / "images" / f"{stem}.{'jpg' if k == 2 else 'png'}"
        )
        mask = np.zeros(SHAPE, np.uint8)
        if lesion:
            mask[2 : 6 + k, 3 : 9 + k] = 1  # a 0/1 label map: any non-zero value is lesion
        Image.fromarray(mask).save(tmp_path / "masks" / mask_name.format(stem))
    return tmp_path


def _prepare(data: Path, **kwargs) -> tuple[dict, dict]:
    summary = prepare_folder(str(data / "images"), str(data / "masks"), str(data / "out"), folds=3, **kwargs)
    records = {r["id"]: r for r in json.loads((data / "out" / "datalist.json").read_text())["all"]}
    return summary, records


def test_without_labels_the_mask_decides_normal_or_lesion(data):
    summary, records = _prepare(data)
    assert {i: (r["class_name"], r["class"], r["lesion"]) for i, r in records.items()} == {
        "a": ("lesion", 1, 1),
        "b": ("lesion", 1, 1),
        "c": ("normal", 0, 0),
        "d": ("lesion", 1, 1),
        "e": ("normal", 0, 0),
        "f": ("lesion", 1, 1),
    }
    assert json.loads((data / "out" / "fold0.json").read_text())["classes"] == {"normal": 0, "lesion": 1}
    assert summary["classes"] == {"lesion": 4, "normal": 2}
    assert np.asarray(Image.open(data / "out" / records["a"]["label"])).max() == 255


@pytest.mark.parametrize("separator", [",", ";"])
def test_classes_from_a_labels_csv(data, separator):
    rows = ["image,class", "a.png,Benign", "b,malignant", "c.jpg,normal", "d,benign", "e,NORMAL", "f,malignant"]
    (data / "labels.csv").write_bytes("\n".join(r.replace(",", separator) for r in rows).encode("utf-8-sig"))
    _, records = _prepare(data, labels=str(data / "labels.csv"))
    assert [records[s]["class"] for s in "abcdef"] == [1, 2, 0, 1, 0, 2]


def _missing_mask(data):
    (data / "masks" / "b_mask.png").unlink()
    return "images/b.png", "missing mask"


def _size_mismatch(data):
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(data / "masks" / "a.png")
    return "masks/a.png", "mask is 5x5 but its image is 32x24"


def _zero_byte(data):
    (data / "images" / "f.png").write_bytes(b"")
    return "images/f.png", "zero-byte file"


def _unreadable_mask(data):
    (data / "masks" / "a.png").write_bytes(b"not a png")
    return "masks/a.png", "not a readable image"


def _non_image(data):
    (data / "images" / "readme.md").write_text("hello")
    return "images/readme.md", "not an image file"


def _duplicate_id(data):
    Image.fromarray(np.zeros(SHAPE, np.uint8)).save(data / "images" / "a.tif")
    return "images/a.tif", "duplicate id 'a'"


def _two_masks(data):
    Image.fromarray(np.zeros(SHAPE, np.uint8)).save(data / "masks" / "a_mask.png")
    return "images/a.png", "several masks: a.png, a_mask.png"


def _orphan_mask(data):
    Image.fromarray(np.zeros(SHAPE, np.uint8)).save(data / "masks" / "zzz.png")
    return "masks/zzz.png", "mask without its image"


BAD = [_missing_mask, _size_mismatch, _zero_byte, _unreadable_mask, _non_image, _duplicate_id, _two_masks, _orphan_mask]


@pytest.mark.parametrize("breakage", BAD, ids=[b.__name__.strip("_") for b in BAD])
def test_bad_input(data, breakage):
    file, problem = breakage(data)
    with pytest.raises(DataError) as error:
        _prepare(data)
    assert file in str(error.value) and problem in str(error.value)
    summary, records = _prepare(data, skip_bad=True)
    assert any(file in e["file"] and problem in e["reason"] for e in summary["excluded"]), summary["excluded"]
    assert len(records) >= 5


def test_labels_csv_problems(data):
    (data / "labels.csv").write_text(
        "image,class\na,benign\nb,benign\nc,normal\nd,tumour\ne,normal\ne,normal\nzz,normal\n"
    )
    with pytest.raises(DataError, match=r"labels\.csv:5: unknown class 'tumour'"):
        _prepare(data, labels=str(data / "labels.csv"))
    summary, records = _prepare(data, labels=str(data / "labels.csv"), skip_bad=True)
    reasons = [e["reason"] for e in summary["excluded"]]
    assert any("second row for 'e'" in r for r in reasons) and any("names 'zz'" in r for r in reasons)
    assert any("no row in" in r for r in reasons) and sorted(records) == ["a", "b", "c", "e"]
    (data / "labels.csv").write_text("file;diagnosis\na;benign\n")
    with pytest.raises(DataError, match="header with the columns image and class"):
        _prepare(data, labels=str(data / "labels.csv"))


def test_labelled_class_must_match_the_mask(data):
    (data / "labels.csv").write_text("image,class\na,normal\nb,benign\nc,normal\nd,benign\ne,normal\nf,benign\n")
    with pytest.raises(DataError, match=r"masks/a\.png: the image is labelled normal but its mask has lesion pixels"):
        _prepare(data, labels=str(data / "labels.csv"))


def test_empty_or_missing_folders_and_overlapping_output(data, tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="nothing: empty images folder"):
        prepare_folder(str(tmp_path / "nothing"), str(data / "masks"), str(tmp_path / "out"))
    with pytest.raises(DataError, match="masks folder does not exist"):
        prepare_folder(str(data / "images"), str(tmp_path / "none"), str(tmp_path / "out"))
    with pytest.raises(DataError, match="must be different folders"):
        prepare_folder(str(data / "images"), str(data / "images"), str(tmp_path / "out"))
    with pytest.raises(DataError, match="would overwrite this input"):
        prepare_folder(str(data / "images"), str(data / "masks"), str(data))
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="--out is a file"):
        prepare_folder(str(data / "images"), str(data / "masks"), str(tmp_path / "file"))
    assert len(list((data / "images").iterdir())) == len(CASES)


def test_cli(data):
    cmd = [
        "folder",
        "--images",
        str(data / "images"),
        "--masks",
        str(data / "masks"),
        "--out",
        str(data / "out"),
        "--folds",
        "3",
    ]
    proc = run_script("prepare_data.py", *cmd)
    assert proc.returncode == 0, proc.stderr
    assert "6 images {'lesion': 4, 'normal': 2}" in proc.stdout
    (data / "masks" / "a.png").unlink()
    proc = run_script("prepare_data.py", *cmd)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_group_pattern_keeps_each_patient_on_one_side_of_every_split(data):
    for folder in ("images", "masks"):  # patients X (a, b), Y (c, d), Z (e, f)
        for path in (data / folder).iterdir():
            path.rename(path.with_name("XXYYZZ"["abcdef".index(path.name[0])] + "_" + path.name))
    summary, records = _prepare(data, group_pattern=r"^([^_]+)_")
    assert {i: r["patient"] for i, r in records.items()} == {
        "X_a": "X",
        "X_b": "X",
        "Y_c": "Y",
        "Y_d": "Y",
        "Z_e": "Z",
        "Z_f": "Z",
    }
    assert summary["grouping"]["patients"] == 3
    for k in range(3):
        split = json.loads((data / "out" / f"fold{k}.json").read_text())
        sides = [{r["patient"] for r in split[name]} for name in ("training", "validation", "test")]
        assert sides[0].isdisjoint(sides[1]) and sides[0].isdisjoint(sides[2]) and sides[1].isdisjoint(sides[2])
    with pytest.raises(DataError, match=r"X_a\.png: file name does not match --group_pattern '\^Y'"):
        _prepare(data, group_pattern="^Y")
    with pytest.raises(DataError, match=r"--group_pattern '\(': not a regular expression"):
        _prepare(data, group_pattern="(")
