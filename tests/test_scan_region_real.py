"""The scan-region crop on real scanner frames, when ../shared/datasets is there: no lesion pixel is cut.

BUS-UCLM's frames are wide-field exports of one Siemens scanner with black side bands and scanner
marks; BUSI's images are cropped scans. Every image of both goes through the training pipeline's
loading and :class:`custom.transforms.CropScanRegiond`, image and mask together, and the mask must keep
every lesion pixel (measured 2026-12-07: 43 of 683 BUS-UCLM frames cropped, none of BUSI's 780).
Skipped, with the reason printed, where a dataset is missing; about 30 s per dataset on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS, REPO, run_bundle
from generated import screen_of
from monai.transforms import Compose
from PIL import Image

from custom.transforms import CropScanRegiond, LoadPictured

DATASETS = REPO / ".." / "shared" / "datasets"
RELEASED_MODEL = REPO / "bundle" / "models" / "model.pt"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _bus_uclm() -> list[tuple[Path, Path]]:
    root = DATASETS / "BUS-UCLM"
    return [(image, root / "masks" / image.name) for image in sorted((root / "images").glob("*.png"))]


def _busi() -> list[tuple[Path, Path]]:
    root = DATASETS / "Dataset_BUSI_with_GT"
    images = sorted(p for p in root.glob("*/*.png") if "_mask" not in p.name)
    return [(image, image.with_name(image.stem + "_mask.png")) for image in images]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "pairs"), [("BUS-UCLM", _bus_uclm), ("BUSI", _busi)])
def test_the_crop_keeps_every_lesion_pixel_of_a_real_dataset(name, pairs):
    pairs = pairs()
    if not pairs:
        pytest.skip(f"{name} not found under {DATASETS.resolve()}")
    load = Compose([LoadPictured(keys="image"), LoadPictured(keys="label", mask=True)])
    crop = CropScanRegiond(keys=["image", "label"])
    cut, cropped = [], 0
    for image, mask in pairs:
        loaded = load({"image": str(image), "label": str(mask)})
        lesion = int((loaded["label"] > 0).sum())
        out = crop(loaded)
        cropped += tuple(out["image"].shape) != tuple(loaded["image"].shape)
        if int((out["label"] > 0).sum()) != lesion:
            cut.append(image.name)
    assert not cut, f"{len(cut)} {name} images lose lesion pixels to the crop: {cut[:5]}"
    print(f"{name}: {cropped} of {len(pairs)} images cropped, no lesion pixel cut")


@pytest.mark.slow
def test_busi_scans_on_a_scanner_screen_get_the_class_and_mask_of_the_plain_image(tmp_path):
    """Issue 32's check on real scans: every 20th BUSI image (all three classes), plain and pasted into a
    synthetic scanner screen, through the released model and inference.json; the same class, and on the
    screen a mask inside the scan with Dice >= 0.95 against the plain image's."""
    images = [image for image, _ in _busi()[::20]]
    if not images:
        pytest.skip(f"BUSI not found under {DATASETS.resolve()}")
    at = (150, 120)
    for kind in ("plain", "screen"):
        (tmp_path / kind).mkdir()
    for index, image in enumerate(images):
        scan = Image.open(image).convert("L")
        scan.save(tmp_path / "plain" / f"case{index:02d}.png")
        screen_of(scan, at).save(tmp_path / "screen" / f"case{index:02d}.png")
    for kind in ("plain", "screen"):
        run_bundle(
            "run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(tmp_path / kind),
            "--output_dir", str(tmp_path / f"out_{kind}"), "--ckpt_path", str(RELEASED_MODEL),
        )  # fmt: skip
    scores = []
    for index, image in enumerate(images):
        name = f"case{index:02d}"
        result = {k: json.loads((tmp_path / f"out_{k}" / f"{name}.json").read_text()) for k in ("plain", "screen")}
        mask = {k: np.asarray(Image.open(tmp_path / f"out_{k}" / f"{name}_seg.png")) > 0 for k in ("plain", "screen")}
        height, width = mask["plain"].shape
        inside = mask["screen"][at[1] : at[1] + height, at[0] : at[0] + width]
        assert result["screen"]["predicted_class"] == result["plain"]["predicted_class"], image.name
        assert mask["screen"].sum() == inside.sum(), image.name  # nothing outside the scan
        scores.append(_dice(inside, mask["plain"]))
        assert scores[-1] >= 0.95, (image.name, scores[-1])
    print(f"{len(images)} BUSI images on a screen: same class, lowest mask Dice {min(scores):.4f}")
