"""DICOM, NIfTI, NRRD and MetaImage in (custom/imageio/) and out (custom.transforms.SaveMaskd), through
preparation (folder mode) and inference. Every file is written here: pydicom, nibabel and ITK."""

from __future__ import annotations

import io
import json
from pathlib import Path

import itk
import nibabel
import numpy as np
import pytest
from conftest import CONFIGS, run_bundle
from generated import jpeg_bytes, write_colour_metaimage, write_colour_nrrd, write_dicom, write_jpeg_dicom, write_png16
from PIL import Image

from custom.imageio import file_stem, is_image_name, read_frames, read_gray, read_mask

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


def test_ybr_dicom_becomes_the_picture_shown(tmp_path):
    from pydicom.pixels import convert_color_space

    rgb = np.random.default_rng(6).integers(0, 256, (H, W, 3), dtype=np.uint8)
    ybr = write_dicom(tmp_path / "ybr.dcm", convert_color_space(rgb, "RGB", "YBR_FULL"), "YBR_FULL")
    # YBR_FULL round trip in 8 bits: within a grey level or two of the RGB picture's luma
    luma = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(read_gray(ybr).astype(int) - luma).max() <= 2


def _smooth_rgb(frames: int) -> np.ndarray:
    """Colour frames with the smooth content of an ultrasound picture (JPEG's loss on noise would hide a wrong decoder)."""
    y, x = np.mgrid[0:H, 0:W]
    base = np.stack([x * 6, y * 8, (x + y) * 3], axis=-1).astype(float)
    return np.stack([np.clip(base + 20 * k, 0, 255).astype(np.uint8) for k in range(frames)])


def test_jpeg_baseline_ybr_422_dicom_decodes_to_the_colours_of_its_jpeg(tmp_path):
    """The usual scanner export: its YBR must come back as RGB (decoded raw, the lesion area came out twice too large)."""
    rgb = _smooth_rgb(2)
    path = write_jpeg_dicom(tmp_path / "jpeg.dcm", rgb, quality=95)
    frames = read_frames(path)
    assert len(frames) == 2
    for k, frame in enumerate(frames):
        pillow = np.asarray(Image.open(io.BytesIO(jpeg_bytes(rgb[k], quality=95))).convert("RGB")).astype(int)
        assert frame.pixels.shape == (H, W, 3)
        # the same JPEG through another decoder: a grey level or two of rounding apart
        assert np.abs(frame.pixels.astype(int) - pillow).max() <= 3
        assert np.abs(frame.pixels.astype(int) - rgb[k]).mean() < 2


LOSSLESS = ["RLELossless", "JPEGLSLossless", "JPEG2000Lossless"]
_RNG = np.random.default_rng(12)
_SHAPE = (32, 48)  # JPEG 2000's six resolution levels need 32 pixels a side
SOURCES = {  # name: (pixels, write_dicom options)
    "gray8": (_RNG.integers(0, 256, _SHAPE, dtype=np.uint8), {}),
    "rgb8": (_RNG.integers(0, 256, (*_SHAPE, 3), dtype=np.uint8), {"photometric": "RGB"}),
    "gray12": (_RNG.integers(0, 4096, _SHAPE, dtype=np.uint16), {"bits_stored": 12}),
    "gray16": (_RNG.integers(0, 65536, _SHAPE, dtype=np.uint16), {"bits_stored": 16}),
    "signed16": (_RNG.integers(-2000, 2000, _SHAPE, dtype=np.int16), {"bits_stored": 16, "signed": True}),
    "clip8": (_RNG.integers(0, 256, (2, *_SHAPE), dtype=np.uint8), {}),
}


@pytest.mark.parametrize("syntax", LOSSLESS)
@pytest.mark.parametrize("source", list(SOURCES))
def test_lossless_compressed_dicom_decodes_to_its_source_pixels(tmp_path, syntax, source):
    """RLE, JPEG-LS and JPEG 2000 (compressed here by pydicom's encoders) give back exactly the pixels encoded."""
    import pydicom
    import pydicom.uid

    pixels, options = SOURCES[source]
    path = write_dicom(tmp_path / "in.dcm", pixels, **options)
    ds = pydicom.dcmread(path)
    ds.compress(getattr(pydicom.uid, syntax))
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == getattr(pydicom.uid, syntax)
    frames = read_frames(path)
    expected = pixels if pixels.ndim == 3 and pixels.shape[-1] != 3 else pixels[None]
    assert len(frames) == len(expected)
    for frame, picture in zip(frames, expected):
        np.testing.assert_array_equal(frame.pixels, picture)


def test_monochrome1_is_inverted_over_its_bit_range(tmp_path):
    """0 is white in MONOCHROME1: 8-bit v shows as 255 - v, 12-bit as 4095 - v, signed 16-bit as -1 - v."""
    gray8 = _picture(7) // 2  # no pure white: the inversion must not stretch the picture to it
    gray12 = np.random.default_rng(8).integers(0, 4096, (H, W), dtype=np.uint16)
    signed = np.random.default_rng(9).integers(-3000, 3000, (H, W), dtype=np.int16)
    cases = [(gray8, {}, 255 - gray8), (gray12, {"bits_stored": 12}, 4095 - gray12)]
    cases.append((signed, {"bits_stored": 16, "signed": True}, -1 - signed))
    for k, (pixels, options, shown) in enumerate(cases):
        path = write_dicom(tmp_path / f"mono1_{k}.dcm", pixels, "MONOCHROME1", **options)
        np.testing.assert_array_equal(read_frames(path)[0].pixels, shown)
    np.testing.assert_array_equal(read_gray(tmp_path / "mono1_0.dcm"), 255 - gray8)


def test_palette_colour_dicom_shows_its_lookup_table_colours(tmp_path):
    import pydicom

    indices = np.random.default_rng(10).integers(0, 256, (H, W), dtype=np.uint8)
    lut = np.random.default_rng(11).integers(0, 65536, (3, 256), dtype=np.uint16)
    path = write_dicom(tmp_path / "palette.dcm", indices, "PALETTE COLOR")
    ds = pydicom.dcmread(path)
    for channel, colour in zip(lut, ("Red", "Green", "Blue")):
        ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [256, 0, 16])  # 256 entries from 0, 16 bits
        ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", channel.tobytes())
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(read_frames(path)[0].pixels, lut.T[indices])


def test_files_without_extension_are_recognised_by_their_content(tmp_path):
    """PACS exports name files by number or UID: DICOM, NIfTI (plain or gzipped) and NRRD are read by what they hold."""
    import gzip
    import shutil

    from custom.data import image_records
    from custom.imageio import is_image_file, output_stem

    folder = tmp_path / "export"
    folder.mkdir()
    sources = {
        "IM000001": write_dicom(tmp_path / "a.dcm", _picture(21)),
        "1.2.840.113619.2.55.3": write_dicom(tmp_path / "b.dcm", _picture(22)),
        "1.2.840.113619.2.55.4": write_dicom(tmp_path / "b4.dcm", _picture(26)),  # the same "stem" without ".4"
        "NIFTI1": write_nifti(tmp_path / "c.nii", _picture(23), (0.3, 0.3)),
        "NIFTIGZ": write_nifti(tmp_path / "d.nii.gz", _picture(24), (0.3, 0.3)),
        "NRRD1": write_itk(tmp_path / "e.nrrd", _picture(25), (0.4, 0.6)),
    }
    for name, source in sources.items():
        shutil.copy(source, folder / name)
    (folder / "NOTES").write_text("not an image")
    (folder / "EMPTYGZ").write_bytes(gzip.compress(b"neither"))
    assert not is_image_file(folder / "NOTES") and not is_image_file(folder / "EMPTYGZ")
    records = image_records(input_dir=str(folder))
    assert sorted(Path(r["image"]).name for r in records) == sorted(sources)
    # each its own outputs: the whole name is the stem
    assert sorted(output_stem(r["image"]) for r in records) == sorted(sources)
    for name, source in sources.items():
        assert is_image_file(folder / name), name
        np.testing.assert_array_equal(read_gray(folder / name), read_gray(source), err_msg=name)
        assert read_frames(folder / name)[0].spacing == read_frames(source)[0].spacing, name


def test_a_broken_medical_file_is_one_line_naming_it(tmp_path):
    from custom.errors import DataError

    for name in ("bad.dcm", "bad.nii.gz", "bad.nrrd"):
        (tmp_path / name).write_bytes(b"not an image at all")
        with pytest.raises(DataError, match=rf"^{tmp_path / name}: not a readable") as info:
            read_gray(tmp_path / name)
        assert "\n" not in str(info.value)


# ---------------------------------------------------------------- colour NRRD and MetaImage
COLOUR_WRITERS = {".nrrd": write_colour_nrrd, ".mha": write_colour_metaimage}


@pytest.mark.parametrize("suffix", COLOUR_WRITERS)
def test_colour_nrrd_and_metaimage_become_grey_as_a_colour_picture_does(tmp_path, suffix):
    """An RGB or RGBA NRRD or MetaImage was refused ("3-component pixels"): its colour becomes grey by the rule of
    a colour PNG (luma, alpha dropped), and 16-bit samples keep their full depth, as in a 16-bit colour PNG."""
    write = COLOUR_WRITERS[suffix]
    rng = np.random.default_rng(50)
    rgb8 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb8).save(tmp_path / "rgb8.png")
    alpha8 = rng.integers(0, 256, (H, W, 1), dtype=np.uint8)
    # 12-bit scanner data in 16-bit samples, a clip of two frames: its high byte alone is at most 15 of 255
    rgb16 = rng.integers(0, 4096, (2, H, W, 3), dtype=np.uint16)
    rgba16 = np.concatenate([rgb16, np.full((2, H, W, 1), 65535, dtype=np.uint16)], axis=-1)
    png8 = [read_gray(tmp_path / "rgb8.png")]
    png16 = [read_gray(write_png16(tmp_path / f"{k}.png", rgb16[k])) for k in range(2)]
    files = {
        "rgb8": (write(tmp_path / f"rgb8{suffix}", rgb8, (0.2, 0.3)), png8),
        "rgba8": (write(tmp_path / f"rgba8{suffix}", np.concatenate([rgb8, alpha8], axis=-1)), png8),
        "rgba16": (write(tmp_path / f"clip{suffix}", rgba16), png16),
    }
    for name, (path, pictures) in files.items():
        assert len(read_frames(path)) == len(pictures), name
        for k, picture in enumerate(pictures):
            np.testing.assert_array_equal(read_gray(path, k), picture, err_msg=name)
    assert read_frames(files["rgb8"][0])[0].spacing == pytest.approx((0.2, 0.3))
    luma = rgb16[1].astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # frame 1 of the clip, over 12 bits
    np.testing.assert_array_equal(read_gray(files["rgba16"][0], 1), np.round(luma * 255 / 4095).astype(np.uint8))


@pytest.mark.parametrize("suffix", COLOUR_WRITERS)
def test_a_colour_nrrd_or_metaimage_mask_is_lesion_where_a_colour_is_on(tmp_path, suffix):
    """Any colour channel counts, at any depth (1 of 65535 has a high byte of 0); an opaque alpha does not."""
    lesion = np.zeros((H, W), dtype=bool)
    lesion[5:12, 8:20] = True
    red = np.zeros((H, W, 4), dtype=np.uint16)
    red[lesion, 0], red[..., 3] = 1, 65535
    path = COLOUR_WRITERS[suffix](tmp_path / f"mask{suffix}", red)
    np.testing.assert_array_equal(read_mask(path), lesion)
    np.testing.assert_array_equal(read_mask(COLOUR_WRITERS[suffix](tmp_path / f"rgb{suffix}", red[..., :3])), lesion)


def test_a_medical_file_of_other_components_than_grey_or_colour_is_one_line_naming_it(tmp_path):
    from custom.errors import DataError

    path = write_colour_metaimage(tmp_path / "field.mha", np.zeros((H, W, 2), dtype=np.float32))  # a 2D vector field
    with pytest.raises(DataError, match=rf"^{path}: 2-component pixels; expected a grayscale, RGB or RGBA image$"):
        read_gray(path)


@pytest.mark.parametrize("suffix", COLOUR_WRITERS)
def test_a_mask_is_written_with_the_geometry_of_a_colour_input(tmp_path, suffix):
    from custom.imageio import write_mask_like

    clip = COLOUR_WRITERS[suffix](tmp_path / f"clip{suffix}", np.zeros((2, H, W, 3), dtype=np.uint16), (0.4, 0.6))
    lesion = np.zeros((H, W), dtype=np.uint8)
    lesion[3:9, 4:30] = 1
    write_mask_like(clip, 1, lesion, tmp_path / f"clip_seg{suffix}")
    mask = itk.imread(str(tmp_path / f"clip_seg{suffix}"))
    assert tuple(mask.GetSpacing()) == pytest.approx((0.6, 0.4, 1.0))
    assert tuple(mask.GetOrigin()) == pytest.approx((0.0, 0.0, 1.0))  # frame 1's slice of the stack
    np.testing.assert_array_equal(itk.array_from_image(mask)[0], lesion)


def test_a_mask_is_written_like_a_nifti_named_without_an_extension(tmp_path):
    """Its temporary file was named from the input's name alone (``.tmpNone``), which nibabel refused."""
    import shutil

    from custom.imageio import mask_suffix, write_mask_like

    export = tmp_path / "NIFTIGZ"
    shutil.copy(write_nifti(tmp_path / "scan.nii.gz", _picture(27), (0.3, 0.3)), export)
    lesion = (_picture(28) > 128).astype(np.uint8)
    assert mask_suffix(export) == ".nii.gz"
    write_mask_like(export, 0, lesion, tmp_path / "NIFTIGZ_seg.nii.gz")
    np.testing.assert_array_equal(np.asarray(nibabel.load(str(tmp_path / "NIFTIGZ_seg.nii.gz")).dataobj).T, lesion)


# ---------------------------------------------------------------- DICOM out
def _dicom_seg_mask(seg_path: Path, source: Path, frame: int = 0) -> np.ndarray:
    """The mask a DICOM Segmentation holds for frame ``frame`` of ``source``, read back with highdicom."""
    import highdicom as hd
    import pydicom

    seg, header = hd.seg.segread(seg_path), pydicom.dcmread(source, stop_before_pixels=True)
    if int(getattr(header, "NumberOfFrames", 1)) > 1:
        pixels = seg.get_pixels_by_source_frame(header.SOPInstanceUID, source_frame_numbers=[frame + 1])
    else:
        pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=[header.SOPInstanceUID])
    return pixels[0, ..., 0]  # the one frame's one segment


def test_dicom_seg_references_its_source_and_holds_the_mask(tmp_path):
    import highdicom as hd
    import pydicom

    from custom.imageio import dicom_references, write_dicom_seg

    lesion = np.zeros((H, W), dtype=np.uint8)
    lesion[4:12, 6:30] = 1
    single = write_dicom(tmp_path / "single.dcm", _picture(40), region_cm=(0.01, 0.02))
    ds = pydicom.dcmread(single)
    ds.FrameOfReferenceUID, ds.PatientName = pydicom.uid.generate_uid(), "Doe^Jane"
    ds.save_as(single, enforce_file_format=True)
    clip = write_dicom(tmp_path / "clip.dcm", np.stack([_picture(k) for k in (41, 42, 43)]), pixel_spacing=(0.2, 0.3))
    for source, frame, spacing in [(single, 0, [0.2, 0.1]), (clip, 2, [0.2, 0.3])]:
        out = tmp_path / f"{source.stem}_seg.dcm"
        write_dicom_seg(source, frame, lesion * 255, out, ("N-Unet", "test"))
        seg, header = hd.seg.segread(out), pydicom.dcmread(source, stop_before_pixels=True)
        np.testing.assert_array_equal(_dicom_seg_mask(out, source, frame), lesion)
        assert (seg.StudyInstanceUID, seg.PatientID) == (header.StudyInstanceUID, header.PatientID)
        assert seg.SeriesInstanceUID != header.SeriesInstanceUID
        referenced = seg.ReferencedSeriesSequence[0]
        assert referenced.SeriesInstanceUID == header.SeriesInstanceUID
        assert referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == header.SOPInstanceUID
        assert referenced.ReferencedInstanceSequence[0].ReferencedSOPClassUID == header.SOPClassUID
        measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        assert [float(v) for v in measures.PixelSpacing] == pytest.approx(spacing)
        assert seg.get("FrameOfReferenceUID") == header.get("FrameOfReferenceUID")
        assert dicom_references(source)["sop_instance_uid"] == header.SOPInstanceUID
    assert hd.seg.segread(tmp_path / "single_seg.dcm").PatientName == "Doe^Jane"
    assert "frame_of_reference_uid" in dicom_references(single) and "frame_of_reference_uid" not in dicom_references(
        clip
    )


def test_a_dicom_without_uids_gets_its_png_mask_and_a_warning_instead_of_a_segmentation(tmp_path, caplog):
    import pydicom
    import torch
    from monai.data import MetaTensor

    from custom.transforms.outputs import SaveMaskd

    source = write_dicom(tmp_path / "bare.dcm", _picture(44))
    ds = pydicom.dcmread(source)
    del ds.StudyInstanceUID
    ds.save_as(source, enforce_file_format=True)
    mask = torch.zeros(1, W, H)  # (1, W, H), as the loader lays images out
    mask[0, 5:10, 3:8] = 1
    image = MetaTensor(torch.zeros(1, W, H), meta={"filename_or_obj": str(source)})
    SaveMaskd(str(tmp_path))({"image": image, "seg_pred": mask})
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "bare_seg.png")) > 0, mask[0].numpy().T > 0)
    assert not (tmp_path / "bare_seg.dcm").exists()
    assert f"{source}: no StudyInstanceUID, which a DICOM Segmentation must reference" in caplog.text


# ---------------------------------------------------------------- inference
@pytest.mark.slow
def test_inference_writes_each_mask_in_its_inputs_family_and_geometry(tmp_path):
    from generated import save_untrained_checkpoint
    from monai.bundle import run

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

    # DICOM: a PNG per frame, with the spacing as the PNG's physical pixel size and in the JSON, and the same
    # mask as a DICOM Segmentation of the source instance and frame, whose UIDs the JSON names
    import pydicom

    dicoms = [("gray", "gray.dcm", 0, [0.2, 0.3]), ("rgb", "rgb.dcm", 0, None)]
    dicoms += [(f"clip_frame{k}", "clip.dcm", k, [0.2, 0.1]) for k in range(3)]
    for stem, name, frame, spacing in dicoms:
        result = json.loads((out / f"{stem}.json").read_text())
        assert result.get("pixel_spacing") == spacing
        header = pydicom.dcmread(inputs / name, stop_before_pixels=True)
        assert result["dicom"] == {
            "study_instance_uid": header.StudyInstanceUID,
            "series_instance_uid": header.SeriesInstanceUID,
            "sop_instance_uid": header.SOPInstanceUID,
        }
        with Image.open(out / f"{stem}_seg.png") as mask:
            assert mask.size == (W, H)
            if spacing:
                assert mask.info["dpi"] == pytest.approx((25.4 / spacing[1], 25.4 / spacing[0]), rel=1e-3)
            np.testing.assert_array_equal(
                _dicom_seg_mask(out / f"{stem}_seg.dcm", inputs / name, frame), np.asarray(mask) // 255
            )
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


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory) -> Path:
    from generated import save_untrained_checkpoint

    return save_untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


WRITERS = {
    "picture.png": lambda path: Image.fromarray(_picture(1)).save(path),
    "ultrasound.dcm": lambda path: write_dicom(path, _picture(2), pixel_spacing=(0.2, 0.3)),
    "scan.nii.gz": lambda path: write_nifti(path, _picture(3), (0.25, 0.5)),
    "vol.nrrd": lambda path: write_itk(path, _picture(4), (0.4, 0.6)),
    "meta.mha": lambda path: write_itk(path, _picture(5), (0.4, 0.6)),
}


@pytest.mark.parametrize(("name", "masks"), [("picture.png", ["picture_seg.png"]),
    ("ultrasound.dcm", ["ultrasound_seg.dcm", "ultrasound_seg.png"]), ("scan.nii.gz", ["scan_seg.nii.gz"]),
    ("vol.nrrd", ["vol_seg.nrrd"]), ("meta.mha", ["meta_seg.mha"])])  # fmt: skip
def test_inference_creates_its_output_folder_for_every_input_family(name, masks, tmp_path, untrained_checkpoint):
    """The first output of a run creates the folder: a NIfTI or NRRD alone used to fail on every image (the
    temporary file of its mask had no folder), hidden in the other tests by a PNG written first."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    WRITERS[name](inputs / name)
    out = tmp_path / "not" / "yet"
    proc = run_bundle("--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(inputs), "--output_dir", str(out),
               "--dataset_dir", str(tmp_path), "--ckpt_path", str(untrained_checkpoint), "--spatial_size", "[32,32]",
               "--cpu_runtime", "torch")  # fmt: skip
    stem = file_stem(name)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*masks, f"{stem}.json", f"{stem}_overlay.png", "results.csv"]
    )
    lesion = json.loads((out / f"{file_stem(name)}.json").read_text())["predicted_class"] != "normal"
    summary = f"inference: 1 images read, 0 skipped, {int(lesion)} with a lesion found; masks and JSON files in {out}"
    assert summary in proc.stdout


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
