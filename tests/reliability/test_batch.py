"""Inference over a batch a reviewer can read: `results.csv` and overlays, files that cannot be read do not stop
the batch, a read-only bundle infers."""

from __future__ import annotations

import csv
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS, REPO, run_bundle
from generated import save_untrained_checkpoint
from PIL import Image

from custom.transforms.overlay import OUTLINE, overlay_picture


def test_the_overlay_outlines_the_mask_and_writes_the_decision():
    grey = np.full((120, 160), 90.0)
    mask = np.zeros((120, 160), bool)
    mask[50:90, 60:120] = True
    picture = np.asarray(overlay_picture(grey, mask, "lesion, p(lesion) 0.83"))
    assert picture.shape == (120, 160, 3)
    red = np.all(picture == OUTLINE, axis=2)
    assert red[50, 60:120].all() and red[89, 60:120].all() and red[50:90, 60].all()  # the outline
    assert not red[60:80, 70:110].any() and not red[:40, 130:].any()  # not the inside, not elsewhere
    corner = picture[:20, :60]  # the caption, light on a black box in the corner
    assert (corner.min(axis=2) > 128).any() and (corner.max(axis=2) == 0).any()


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_batch_goes_on_past_an_unreadable_file_and_lists_every_input(tmp_path):
    import nibabel

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (70, 90), dtype=np.uint8)).save(images / "a.png")
    nibabel.save(
        nibabel.Nifti1Image(rng.integers(0, 255, (80, 60), dtype=np.uint8), np.diag([0.1, 0.2, 1.0, 1.0])),
        images / "b.nii.gz",
    )
    (images / "c.png").write_bytes(b"this is not a picture\n")
    out = tmp_path / "not" / "yet" / "there"  # created for every format, NIfTI included
    proc = run_bundle(
        "run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(images),
        "--output_dir", str(out), "--ckpt_path", str(save_untrained_checkpoint(tmp_path / "model.pt")),
        "--spatial_size", "[32,32]", check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]  # one file failed
    log = proc.stdout + proc.stderr
    assert f"{images / 'c.png'}: not a readable image" in log and "Traceback" not in log
    rows = read_rows(out / "results.csv")
    assert [Path(r["file"]).name for r in rows] == ["a.png", "b.nii.gz", "c.png"]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert "not a readable image" in rows[2]["warnings"]
    for row, stem, size in ((rows[0], "a", (90, 70)), (rows[1], "b", (80, 60))):
        assert row["class"] in ("normal", "lesion") and 0 <= float(row["lesion_probability"]) <= 1
        assert row["scan_region"] == f"0 0 {size[0]} {size[1]}"  # a plain picture is its own scan region
        with Image.open(out / f"{stem}_overlay.png") as overlay:
            assert overlay.size == size and overlay.mode == "RGB"
    assert rows[0]["area_mm2"] == "" and "pixel spacing unknown" in rows[0]["warnings"]  # a PNG has no spacing
    # NIfTI states its spacing: the lesion masked in b (by the seeded untrained network) is measured in millimetres
    assert rows[1]["class"] == "lesion" and "empty mask" not in rows[1]["warnings"], rows[1]
    assert float(rows[1]["area_mm2"]) > 0 and float(rows[1]["longest_diameter_mm"]) > 0
    assert (out / "b_seg.nii.gz").is_file() and (out / "a_seg.png").is_file()


@pytest.mark.slow
def test_a_read_only_bundle_infers_and_writes_nothing_inside_it(tmp_path):
    bundle = tmp_path / "installed"
    shutil.copytree(REPO / "bundle" / "configs", bundle / "configs")
    shutil.copytree(REPO / "bundle" / "models", bundle / "models", ignore=shutil.ignore_patterns("tensorboard"))
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 80), dtype=np.uint8)).save(images / "a.png")
    files = sorted(p for p in bundle.rglob("*"))
    for path in [bundle, *files]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        proc = run_bundle(
            "run", "--config_file", str(bundle / "configs" / "inference.json"), "--bundle_root", str(bundle),
            "--input_dir", str(images), "--output_dir", str(tmp_path / "out"), check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert sorted(p for p in bundle.rglob("*")) == files  # nothing written (not even as root, who may write)
        assert [r["status"] for r in read_rows(tmp_path / "out" / "results.csv")] == ["ok"]
    finally:
        for path in [bundle, *files]:
            os.chmod(path, path.stat().st_mode | stat.S_IWUSR)
