"""The scan-region crop on real scanner frames, when ../shared/datasets is there: no lesion pixel is cut.

BUS-UCLM's frames are wide-field exports of one Siemens scanner with black side bands and scanner
marks; BUSI's images are cropped scans. Every image of both goes through the training pipeline's
loading and :class:`custom.transforms.CropScanRegiond`, image and mask together, and the mask must keep
every lesion pixel (measured 2026-12-07: 43 of 683 BUS-UCLM frames cropped, none of BUSI's 780).
Skipped, with the reason printed, where a dataset is missing; about 30 s per dataset on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.transforms import Compose

from custom.transforms import CropScanRegiond, LoadPictured

DATASETS = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


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
