"""The scan region (custom.transforms.region): a scanner screen is cropped to its scan, a scan is left whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIGS, REPO, run_bundle
from generated import lesion_scan, screen_of, write_dicom
from monai.data import MetaTensor
from PIL import Image

from custom.transforms import CropScanRegiond, LoadPictured, MatchLabelSized
from custom.transforms.region import find_scan_region

RELEASED_MODEL = REPO / "bundle" / "models" / "model.pt"


def speckle(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An ultrasound-like ``(H, W)`` uint8 picture: smoothed multiplicative noise over a depth-fading brightness,
    dark at the bottom as many BUSI scans are."""
    rng = np.random.default_rng(seed)
    depth = np.linspace(1.0, 0.15, height)[:, None]
    noise = rng.rayleigh(1.0, (height, width))
    return np.clip(150 * depth * noise, 0, 255).astype(np.uint8)


def loaded(picture: Image.Image, path: Path) -> dict:
    picture.save(path)
    return LoadPictured("image")({"image": str(path)})


def test_a_plain_scan_is_left_whole(tmp_path):
    for seed, (h, w) in enumerate([(300, 400), (120, 90), (606, 856)]):
        grey = speckle(h, w, seed).astype(np.float32)
        assert find_scan_region(grey) == (0, 0, w, h)
    d = CropScanRegiond(["image", "label"], allow_missing_keys=True)(
        loaded(Image.fromarray(speckle(200, 260)), tmp_path / "a.png")
    )
    assert tuple(d["image"].shape[1:]) == (260, 200)
    assert d["image"].meta["scan_region"] == [0, 0, 260, 200] and d["image"].meta["scan_region_source"] == "whole"


def test_a_scan_with_a_dark_lesion_is_left_whole():
    grey = np.asarray(lesion_scan(), dtype=np.float32)
    assert find_scan_region(grey) == (0, 0, grey.shape[1], grey.shape[0])


def test_the_scan_is_found_on_a_synthetic_screen_and_the_mask_pasted_back(tmp_path):
    scan = Image.fromarray(speckle(240, 320))
    d = loaded(screen_of(scan), tmp_path / "screen.png")
    size = tuple(d["image"].shape[1:])
    crop = CropScanRegiond("image")
    cropped = crop(d)
    x0, y0, x1, y1 = cropped["image"].meta["scan_region"]
    assert cropped["image"].meta["scan_region_source"] == "found"
    # the whole scan, and of the frame at most a few pixels of black margin
    assert 150 - 12 <= x0 <= 150 and 120 - 12 <= y0 <= 120 and 470 <= x1 <= 470 + 12 and 360 <= y1 <= 360 + 12
    assert tuple(cropped["image"].shape[1:]) == (x1 - x0, y1 - y0)
    restored = crop.inverse({"image": cropped["image"]})["image"]
    assert tuple(restored.shape[1:]) == size
    assert torch.equal(restored[:, x0:x1, y0:y1], cropped["image"]) and float(restored[:, :x0].abs().sum()) == 0


def test_the_region_a_dicom_states_wins(tmp_path):
    import pydicom

    pixels = np.zeros((100, 140), np.uint8)
    pixels[10:90, 30:120] = speckle(80, 90)
    path = write_dicom(tmp_path / "us.dcm", pixels, region_cm=(0.01, 0.01))
    ds = pydicom.dcmread(path)
    region = ds.SequenceOfUltrasoundRegions[0]
    region.RegionLocationMinX0, region.RegionLocationMinY0, region.RegionLocationMaxX1, region.RegionLocationMaxY1 = (
        30,
        10,
        119,
        89,
    )
    ds.save_as(path)
    d = CropScanRegiond("image")(LoadPictured("image")({"image": str(path)}))
    assert d["image"].meta["scan_region"] == [30, 10, 120, 90] and d["image"].meta["scan_region_source"] == "dicom"
    assert tuple(d["image"].shape[1:]) == (90, 80)


def test_label_is_cropped_with_its_image(tmp_path):
    image = MetaTensor(torch.zeros(1, 60, 50))
    image[:, 10:40, 5:45] = torch.from_numpy(speckle(40, 30).T.astype(np.float32))  # (W, H) as loaded
    image.meta["ultrasound_region"] = [10, 5, 40, 45]
    label = torch.zeros(1, 60, 50)
    label[:, 20:25, 20:30] = 1
    d = CropScanRegiond(["image", "label"])({"image": image, "label": label})
    assert tuple(d["label"].shape[1:]) == (30, 40) and float(d["label"].sum()) == float(label.sum())


def test_evaluation_pastes_the_prediction_of_the_scan_into_the_uncropped_target():
    image = MetaTensor(torch.zeros(3, 32, 32), meta={"scan_region": [10, 5, 40, 45]})
    pred = {"seg": torch.full((1, 32, 32), 5.0), "cls": torch.zeros(2)}
    out = MatchLabelSized()({"image": image, "pred": pred, "label": {"seg": torch.zeros(1, 60, 50)}})["pred"]["seg"]
    assert tuple(out.shape) == (1, 60, 50)
    assert torch.allclose(out[:, 10:40, 5:45], torch.tensor(5.0))
    assert float(out.sum()) == pytest.approx(5.0 * 30 * 40 - 20.0 * (60 * 50 - 30 * 40))
    # validation in training: target cropped and resized with the image, nothing to do
    same = {"image": image, "pred": pred, "label": {"seg": torch.zeros(1, 32, 32)}}
    assert MatchLabelSized()(same)["pred"] is pred


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


@pytest.mark.slow
def test_a_scan_on_a_scanner_screen_gets_the_class_and_mask_of_the_plain_image(tmp_path):
    """The issue's check, through the released model and inference.json as a user runs them."""
    scan = lesion_scan()
    at = (150, 120)
    results, masks = {}, {}
    for kind, picture in (("plain", scan), ("screen", screen_of(scan, at))):
        folder = tmp_path / kind
        folder.mkdir()
        picture.save(folder / "case.png")
        out = tmp_path / f"out_{kind}"
        run_bundle(
            "run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(folder),
            "--output_dir", str(out), "--ckpt_path", str(RELEASED_MODEL),
        )  # fmt: skip
        results[kind] = json.loads((out / "case.json").read_text())
        masks[kind] = np.asarray(Image.open(out / "case_seg.png")) > 0
    assert masks["screen"].shape == (screen_of(scan, at).height, screen_of(scan, at).width)  # the input's full size
    assert results["screen"]["scan_region"]["source"] == "found"
    assert results["plain"]["scan_region"] == {"box": [0, 0, scan.width, scan.height], "source": "whole"}
    assert results["screen"]["predicted_class"] == results["plain"]["predicted_class"] == "lesion"
    inside = masks["screen"][at[1] : at[1] + scan.height, at[0] : at[0] + scan.width]
    assert masks["plain"].any() and not (masks["screen"].sum() - inside.sum())  # nothing outside the scan
    assert dice(inside, masks["plain"]) >= 0.95
