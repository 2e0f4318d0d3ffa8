"""The synthetic demo dataset in BUSI's layout (custom/data/demo.py, scripts/make_demo_data.py)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

from custom.data import ensure_demo_dataset
from custom.data.demo import COUNTS, write_raw
from custom.errors import DataError


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.png"))
    }


def test_raw_layout_and_quirks(tmp_path):
    write_raw(tmp_path)
    for class_name, count in COUNTS.items():
        images = sorted((tmp_path / class_name).glob(f"{class_name} (*).png"))
        assert len(images) == count
        for image in images:
            assert (image.parent / f"{image.stem}_mask.png").is_file()
    modes = {p.name: Image.open(p).mode for p in tmp_path.rglob("*.png")}
    assert modes["benign (3).png"] == "RGB" and modes["malignant (2).png"] == "RGB" and modes["benign (1).png"] == "L"
    assert modes["benign (1)_mask.png"] == "1" and modes["normal (1)_mask.png"] == "RGB"
    assert modes["benign (5)_mask_1.png"] == "RGBA" and "benign (11)_mask_1.png" in modes
    sides = [s for p in tmp_path.rglob("* ([0-9]*).png") for s in Image.open(p).size]
    assert min(sides) >= 96 and max(sides) <= 160 and len(set(sides)) > 20


def test_lesions_are_darker_than_their_surroundings(tmp_path):
    write_raw(tmp_path)
    for image in sorted((tmp_path / "malignant").glob("malignant (?).png")):
        pixels = np.asarray(Image.open(image).convert("L"), dtype=float)
        mask = np.asarray(Image.open(image.parent / f"{image.stem}_mask.png"))
        assert pixels[mask].mean() < 0.6 * pixels[~mask].mean(), image.name


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    write_raw(tmp_path / "a", seed=0)
    write_raw(tmp_path / "b", seed=0)
    write_raw(tmp_path / "c", seed=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_demo_dataset_is_generated_once(tmp_path):
    root = tmp_path / "bundle" / "data" / "demo"
    assert ensure_demo_dataset(str(root)) == str(root)
    fold = json.loads((root / "fold3.json").read_text())
    assert len(fold["training"]) + len(fold["validation"]) + len(fold["test"]) == sum(COUNTS.values())
    summary = json.loads((root / "summary.json").read_text())
    assert summary["classes"] == COUNTS and summary["duplicates"] is None
    stamp = (root / "datalist.json").stat().st_mtime_ns
    assert ensure_demo_dataset(str(root)) == str(root)
    assert (root / "datalist.json").stat().st_mtime_ns == stamp
    assert not [p for p in root.parent.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_callers_get_one_complete_dataset(tmp_path):
    root = str(tmp_path / "demo")
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(ensure_demo_dataset, [root] * 4))
    assert results == [root] * 4
    assert len(list((tmp_path / "demo" / "images").iterdir())) == sum(COUNTS.values())
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_empty_root_is_filled_but_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    assert (Path(ensure_demo_dataset(str(tmp_path / "empty"))) / "fold0.json").is_file()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds no demo dataset"):
        ensure_demo_dataset(str(tmp_path / "foreign"))


def test_script(tmp_path):
    proc = run_script("make_demo_data.py", "--out", str(tmp_path / "d"), "--seed", "2")
    assert proc.returncode == 0, proc.stderr
    assert "demo dataset: 42 images" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "d").glob("*.json")) == [
        "datalist.json",
        "fold0.json",
        "fold1.json",
        "fold2.json",
        "fold3.json",
        "fold4.json",
        "summary.json",
    ]
