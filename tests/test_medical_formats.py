"""DICOM, NIfTI, NRRD and MetaImage in (custom/data/medical.py) and out (custom.transforms.SaveMaskd), through
preparation (folder mode) and inference. Every file is written here: pydicom, nibabel and ITK."""

from __future__ import annotations

import json
from pathlib import Path

import itk
import nibabel
import numpy as np
import pytest
from conftest import CONFIGS
from generated import write_dicom
from PIL import Image

from custom.data.io import file_stem, is_image_name, read_gray, read_mask
from custom.data.medical import read_frames

RNG = np.random.default_rng(0)
H, W = 30, 40


def write_nifti(path: Path, picture: np.ndarray, spacing: tuple[float, float]) -> Path:
    """``picture`` ``(H, W)`` as a NIfTI of shape (W, H): x along columns, spacing (rows, columns) in mm."""
    affine = np.diag([spacing[1], spacing[0], 1.0, 1.0])
    affine[:3, 3] = [5.0, -3.0, 2.0]
    nibabel.save(nibabel.Nifti1Image(picture.T.copy(), affine), str(path))
    return path


def write_itk(path: Path, picture: np.ndarray, spacing: tuple[float, float]) -> Path:
    image = itk.image_from_array(np.ascontiguousarray(picture))
    image.SetSpacing([spacing[1], spacing[0]])
    image.SetOrigin([1.5, 2.5])
    itk.imwrite(image, str(path))
    return path


def _picture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W), dtype=np.uint8)


# ---------------------------------------------------------------- reading
def test_each_format_reads_as_the_picture_it_holds_with_its_spacing(tmp_path):
    gray = _picture(1)
    rgb = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    clip = np.stack([_picture(k) for k in (3, 4, 5)])
    files = {
        "gray.dcm": (write_dicom(tmp_path / "gray.dcm", gray, pixel_spacing=(0.2, 0.3)), [gray], (0.2, 0.3)),
        "rgb.dcm": (
            write_dicom(tmp_path / "rgb.dcm", rgb, "RGB"),
            [np.asarray(Image.fromarray(rgb).convert("L"))],
            None,
        ),
        # the ultrasound region (centimetres per pixel) wins over PixelSpacing
        "clip.dcm": (
            write_dicom(tmp_path / "clip.dcm", clip, region_cm=(0.01, 0.02), pixel_spacing=(9.0, 9.0)),
            list(clip),
            (0.2, 0.1),
        ),
        "scan.nii.gz": (write_nifti(tmp_path / "scan.nii.gz", gray, (0.25, 0.5)), [gray], (0.25, 0.5)),
        "scan.nrrd": (write_itk(tmp_path / "scan.nrrd", gray, (0.4, 0.6)), [gray], (0.4, 0.6)),
        "scan.mha": (write_itk(tmp_path / "scan.mha", gray, (0.4, 0.6)), [gray], (0.4, 0.6)),
    }
    for name, (path, pictures, spacing) in files.items():
        assert is_image_name(name) and file_stem(name) == name.split(".")[0]
        frames = read_frames(path)
        assert len(frames) == len(pictures), name
        for k, (frame, picture) in enumerate(zip(frames, pictures)):
            assert frame.spacing == (pytest.approx(spacing) if spacing else None), name
            np.testing.assert_array_equal(read_gray(path, k), picture, err_msg=name)


def test_ybr_and_monochrome1_dicom_become_the_picture_shown(tmp_path):
    from pydicom.pixel_data_handlers.util import convert_color_space

    rgb = np.random.default_rng(6).integers(0, 256, (H, W, 3), dtype=np.uint8)
    ybr = write_dicom(tmp_path / "ybr.dcm", convert_color_space(rgb, "RGB", "YBR_FULL"), "YBR_FULL")
    # YBR_FULL round trip in 8 bits: within a grey level or two of the RGB picture's luma
    luma = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(read_gray(ybr).astype(int) - luma).max() <= 2
    inverted = write_dicom(tmp_path / "mono1.dcm", _picture(7), "MONOCHROME2")
    import pydicom

    ds = pydicom.dcmread(inverted)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(inverted)
    picture = _picture(7)
    assert np.array_equal(read_gray(inverted), picture.max() - picture)


def test_a_broken_medical_file_is_one_line_naming_it(tmp_path):
    from custom.data.errors import DataError

    for name in ("bad.dcm", "bad.nii.gz", "bad.nrrd"):
        (tmp_path / name).write_bytes(b"not an image at all")
        with pytest.raises(DataError, match=rf"^{tmp_path / name}: not a readable") as info:
            read_gray(tmp_path / name)
        assert "\n" not in str(info.value)


# ---------------------------------------------------------------- inference
@pytest.mark.slow
def test_inference_writes_each_mask_in_its_inputs_family_and_geometry(tmp_path):
    from monai.bundle import run
    from generated import save_untrained_checkpoint

    inputs = tmp_path / "in"
    inputs.mkdir()
    write_dicom(inputs / "gray.dcm", _picture(1), pixel_spacing=(0.2, 0.3))
    write_dicom(inputs / "rgb.dcm", np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8), "RGB")
    write_dicom(inputs / "clip.dcm", np.stack([_picture(k) for k in (3, 4, 5)]), region_cm=(0.01, 0.02))
    write_nifti(inputs / "scan.nii.gz", _picture(8), (0.25, 0.5))
    write_itk(inputs / "vol.nrrd", _picture(9), (0.4, 0.6))
    checkpoint = save_untrained_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "out"
    run("run", config_file=str(CONFIGS / "inference.json"), input_dir=str(inputs), output_dir=str(out),
        dataset_dir=str(tmp_path), ckpt_path=str(checkpoint), spatial_size=[32, 32], logging_file=False)  # fmt: skip

    # DICOM: a PNG per frame, with the spacing as the PNG's physical pixel size and in the JSON
    for stem, spacing in [("gray", [0.2, 0.3]), ("rgb", None)] + [(f"clip_frame{k}", [0.2, 0.1]) for k in range(3)]:
        result = json.loads((out / f"{stem}.json").read_text())
        assert result.get("pixel_spacing") == spacing
        with Image.open(out / f"{stem}_seg.png") as mask:
            assert mask.size == (W, H)
            if spacing:
                assert mask.info["dpi"] == pytest.approx((25.4 / spacing[1], 25.4 / spacing[0]), rel=1e-3)
        measured = result["lesion_measurements"]
        if spacing and measured["components"]:
            assert measured["area_mm2"] == pytest.approx(measured["area_px"] * spacing[0] * spacing[1])
    assert json.loads((out / "clip_frame2.json").read_text())["frame"] == 2
    # NIfTI: a NIfTI mask with the input's affine and shape
    source, mask = nibabel.load(str(inputs / "scan.nii.gz")), nibabel.load(str(out / "scan_seg.nii.gz"))
    assert mask.shape == source.shape == (W, H)
    np.testing.assert_allclose(mask.affine, source.affine)
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}
    # NRRD: an NRRD mask with the input's spacing and origin
    source, mask = itk.imread(str(inputs / "vol.nrrd")), itk.imread(str(out / "vol_seg.nrrd"))
    assert tuple(mask.shape) == tuple(source.shape) == (H, W)
    assert tuple(mask.GetSpacing()) == pytest.approx(tuple(source.GetSpacing()))
    assert tuple(mask.GetOrigin()) == pytest.approx(tuple(source.GetOrigin()))


# ---------------------------------------------------------------- preparation
def test_folder_preparation_reads_medical_images_and_masks_frame_by_frame(tmp_path):
    from custom.data.folder import prepare_folder

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    lesion = np.zeros((H, W), dtype=np.uint8)
    lesion[5:15, 10:25] = 1
    cases = 0
    for k in range(4):
        write_nifti(images / f"n{k}.nii.gz", _picture(10 + k), (0.3, 0.3))
        write_nifti(masks / f"n{k}.nii.gz", lesion * (k % 2), (0.3, 0.3))
        write_itk(images / f"r{k}.nrrd", _picture(20 + k), (0.3, 0.3))
        write_itk(masks / f"r{k}_mask.nrrd", lesion, (0.3, 0.3))
        cases += 2
    # a 3-frame clip with its 3-frame mask: three cases, of one acquisition (kept on one side of every split)
    write_dicom(images / "clip.dcm", np.stack([_picture(k) for k in (30, 31, 32)]), region_cm=(0.01, 0.01))
    write_dicom(masks / "clip.dcm", np.stack([lesion * 255] * 3))
    cases += 3
    summary = prepare_folder(str(images), str(masks), str(tmp_path / "out"), folds=3)
    datalist = json.loads((tmp_path / "out" / "datalist.json").read_text())
    records = {r["id"]: r for r in datalist["all"]}
    assert len(records) == cases, summary
    assert {f"clip_frame{k}" for k in range(3)} <= set(records)
    np.testing.assert_array_equal(read_gray(tmp_path / "out" / records["clip_frame1"]["image"]), _picture(31))
    np.testing.assert_array_equal(read_mask(tmp_path / "out" / records["n1"]["label"]), lesion.astype(bool))
    assert records["n0"]["class"] == 0 and records["n1"]["class"] == 1
    folds = [json.loads((tmp_path / "out" / f"fold{k}.json").read_text()) for k in range(3)]
    for fold in folds:
        sides = {r["id"]: side for side in ("training", "validation", "test") for r in fold[side]}
        assert len({sides[f"clip_frame{k}"] for k in range(3)}) == 1
