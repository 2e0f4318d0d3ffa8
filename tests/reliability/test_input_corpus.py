"""The bad-input corpus: every messy input file, what each stage (preparation, training, inference) does with it.

``CASES`` is the single description: how to make each input, and per stage (``scripts/prepare_data.py
folder``, training, inference) either what the tool does with it (checked here) or the problem a run
stops with (one ``error: ...`` line naming the file). ``docs/reliability.md`` carries the table
rendered from it (``tests/reliability/reliability_doc.py``; ``test_reliability_doc.py`` fails when the two differ).

Cost: preparation runs in-process per case (about 0.1 s each; the 5000x5000 image 4 s). Training and
inference run through ``monai.bundle.run`` in this process (what ``python -m monai.bundle run`` calls,
without a new interpreter per case): refusals stop while the config is parsed (under a second),
the cases a stage handles are checked on the stage's preprocessing (the pixels the network gets)
and then trained / inferred together in one run each (marked slow).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS, REPO
from generated import (
    SHAPE,
    bundle_run,
    lesion,
    lesion_scan,
    lesion_scan_mask,
    pair_folders,
    picture,
    save_untrained_checkpoint,
    screen_of,
    write_colour_metaimage,
    write_colour_nrrd,
    write_dicom,
    write_jpeg_dicom,
    write_pair,
    write_png16,
)
from PIL import Image

from custom.imageio import file_stem, image_size, mask_suffix, read_frames

TINY = {"epochs": 1, "spatial_size": [32, 32], "batch_size": 2, "num_workers": 0}


# ---------------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handled:
    """The stage accepts the input and does ``what``; the test checks it against the case's reference pixels."""

    what: str


@dataclass(frozen=True)
class Refused:
    """The stage stops with a one-line error naming ``file`` (relative to the case folder) and containing ``problem``."""

    file: str
    problem: str


@dataclass(frozen=True)
class Failed:
    """Inference of a folder goes on without ``file``: a ``failed`` row of ``results.csv`` whose warnings contain
    ``problem``, the same line in the log, and exit status 1 (one file failed)."""

    file: str
    problem: str


@dataclass(frozen=True)
class NotApplicable:
    """The stage never reads this kind of input."""

    why: str


Outcome = Handled | Refused | Failed | NotApplicable


@dataclass(frozen=True)
class Reference:
    """What a handled input means: its 8-bit grayscale pixels and its lesion mask (None: its file already is that)."""

    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        name: short id (test ids, the table).
        input: what the input is, for the table.
        make: writes the case into a folder (``images/``, ``masks/``, or a ``fold0.json``); returns the reference.
        prepare / train / infer: the outcome of each stage.
        good_cases: whether the stages add ordinary cases next to it (not for the empty folder).
    """

    name: str
    input: str
    make: Callable[[Path], Reference | None]
    prepare: Outcome
    train: Outcome
    infer: Outcome
    good_cases: bool = True


def _ordinary(stem: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        write_pair(root, stem)

    return make


def _broken_image(content: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        write_pair(root, "x")
        path = root / "images" / "x.png"
        path.write_bytes(content(path.read_bytes()))

    return make


def _gray16(root: Path) -> Reference:
    write_pair(root, "x", image=Image.fromarray(picture().astype(np.uint16) * 257))
    return Reference(picture(), lesion())


def _palette(root: Path) -> Reference:
    # grey levels stored in a shuffled palette: reading the indices instead of the colours gives other pixels
    order = np.random.default_rng(1).permutation(256).astype(np.uint8)
    indices = np.argsort(order).astype(np.uint8)[picture()]
    image = Image.fromarray(indices, "P")
    image.putpalette(np.repeat(order, 3).tolist())
    write_pair(root, "x", image=image)
    return Reference(picture(), lesion())


def _rgba(root: Path) -> Reference:
    gray = picture()
    write_pair(root, "x", image=Image.fromarray(np.dstack([gray, gray, gray, np.full_like(gray, 128)])))
    return Reference(gray, lesion())


def _bit_depth(bits: int) -> Callable[[Path], Reference]:
    # scanner data of `bits` bits in a 16-bit PNG: the decoder scales by 2**bits - 1, not by the container's 65535
    def make(root: Path) -> Reference:
        top = 2**bits - 1
        write_pair(root, "x", image=Image.fromarray(np.round(picture() * (top / 255)).astype(np.uint16)))
        return Reference(picture(), lesion())

    return make


def _float_tiff(root: Path) -> Reference:
    write_pair(root, "x", image=Image.fromarray((picture() / 255).astype(np.float32)), ext=".tif")
    return Reference(picture(), lesion())


def _nan_tiff(root: Path) -> None:
    pixels = (picture() / 255).astype(np.float32)
    pixels[5, 5] = np.nan
    write_pair(root, "x", image=Image.fromarray(pixels), ext=".tif")


def _int32_tiff(root: Path) -> Reference:
    write_pair(root, "x", image=Image.fromarray(picture().astype(np.int32) * 257), ext=".tif")
    return Reference(picture(), lesion())


def _one_bit(root: Path) -> Reference:
    bits = picture() > 127
    write_pair(root, "x", image=Image.fromarray(bits))
    return Reference(bits.astype(np.uint8) * 255, lesion())


def _cmyk_tiff(root: Path) -> Reference:
    gray = picture()
    write_pair(root, "x", image=Image.fromarray(np.dstack([gray] * 3)).convert("CMYK"), ext=".tif")
    return Reference(gray, lesion())


def _dicom(photometric: str = "MONOCHROME2", bits: int = 8) -> Callable[[Path], Reference]:
    """An ultrasound DICOM image (its mask a PNG): colour with the picture in every channel, or ``bits``-bit grey."""

    def make(root: Path) -> Reference:
        images, masks = pair_folders(root)
        gray = picture()
        pixels = np.dstack([gray] * 3) if photometric == "RGB" else np.round(gray * ((2**bits - 1) / 255))
        write_dicom(images / "x.dcm", pixels, photometric, bits_stored=bits)
        Image.fromarray(lesion().astype(np.uint8) * 255).save(masks / "x.png")
        return Reference(gray, lesion())

    return make


def _jpeg_dicom(root: Path) -> Reference:
    """A JPEG baseline YBR_FULL_422 DICOM, the usual scanner export, of a grey picture in 8x8 blocks: JPEG at
    quality 100 keeps such a picture exactly (one coefficient a block, neutral chroma), so its luma is the
    reference to the pixel; YBR decoded as if RGB (pydicom 2's silent mistake) is far from it."""
    images, masks = pair_folders(root)
    gray = np.repeat(np.repeat(picture()[::8, ::8], 8, axis=0), 8, axis=1)
    write_jpeg_dicom(images / "x.dcm", np.dstack([gray] * 3), quality=100)
    Image.fromarray(lesion().astype(np.uint8) * 255).save(masks / "x.png")
    return Reference(gray, lesion())


def _dicom_without_extension(root: Path) -> Reference:
    """A DICOM named as a PACS exports it, with no extension."""
    reference = _dicom()(root)
    (root / "images" / "x.dcm").rename(root / "images" / "x")
    return reference


def _screen_capture(root: Path) -> Reference:
    """A scan with a lesion inside a synthetic scanner screen (black borders, a bar of text, colour marks), as a
    screen capture exports it, its mask in the screen's frame; the reference is the capture itself (preparation
    keeps it whole), and :func:`test_a_screen_capture_is_preprocessed_as_its_scan` checks the crop."""
    images, masks = pair_folders(root)
    screen = screen_of(lesion_scan(), SCREEN_AT)
    screen.save(images / "x.png")
    mask = screen_mask()
    Image.fromarray(mask.astype(np.uint8) * 255).save(masks / "x.png")
    return Reference(np.asarray(screen.convert("L")), mask)


def screen_mask() -> np.ndarray:
    """The lesion of :func:`_screen_capture` in the screen's frame."""
    scan = lesion_scan_mask()
    screen = screen_of(lesion_scan(), SCREEN_AT)
    mask = np.zeros((screen.height, screen.width), dtype=bool)
    mask[SCREEN_AT[1] : SCREEN_AT[1] + scan.shape[0], SCREEN_AT[0] : SCREEN_AT[0] + scan.shape[1]] = scan
    return mask


def _broken_dicom(root: Path) -> None:
    _dicom()(root)
    path = root / "images" / "x.dcm"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # into its pixel data


def _nan_nifti(root: Path) -> None:
    import nibabel

    images, masks = pair_folders(root)
    pixels = (picture() / 255).astype(np.float32)
    pixels[5, 5] = np.nan
    nibabel.save(nibabel.Nifti1Image(pixels.T.copy(), np.eye(4)), str(images / "x.nii.gz"))
    Image.fromarray(lesion().astype(np.uint8) * 255).save(masks / "x.png")


def _twelve_bits() -> np.ndarray:
    """12-bit scanner data in 16-bit samples: their high byte alone would leave the picture in 16 grey levels."""
    return np.round(picture() * (4095 / 255)).astype(np.uint16)


def _wide_colour(channels: int, ext: str = ".png") -> Callable[[Path], Reference]:
    """A 16-bit colour (3), colour and alpha (4) or grey and alpha (2) picture (PNG, TIFF) or medical file (NRRD,
    MetaImage) holding 12-bit data."""

    def make(root: Path) -> Reference:
        images, masks = pair_folders(root)
        wide = _twelve_bits()
        opaque = np.full_like(wide, 65535)
        samples = np.dstack({2: [wide, opaque], 3: [wide] * 3, 4: [wide] * 3 + [opaque]}[channels])
        if ext == ".tif":
            import tifffile

            tifffile.imwrite(images / "x.tif", samples, photometric="rgb")
        else:
            {".png": write_png16, ".nrrd": write_colour_nrrd, ".mha": write_colour_metaimage}[ext](
                images / f"x{ext}", samples
            )
        Image.fromarray(lesion().astype(np.uint8) * 255).save(masks / "x.png")
        return Reference(picture(), lesion())

    return make


def _mask_rgb16(root: Path) -> Reference:
    """A 16-bit RGB mask whose lesion is 1 (of 65535) in the red channel: its high byte is 0 everywhere."""
    images, masks = pair_folders(root)
    Image.fromarray(picture()).save(images / "x.png")
    red = lesion().astype(np.uint16)
    write_png16(masks / "x.png", np.dstack([red, np.zeros_like(red), np.zeros_like(red)]))
    return Reference(picture(), lesion())


def _rgb_nifti(root: Path) -> Reference:
    import nibabel

    images, masks = pair_folders(root)
    rgb = np.dstack([picture()] * 3).transpose(1, 0, 2).copy()  # x (columns) first, as NIfTI stores it
    records = rgb.view([("R", "u1"), ("G", "u1"), ("B", "u1")])[..., 0]
    nibabel.save(nibabel.Nifti1Image(records, np.eye(4)), str(images / "x.nii.gz"))
    Image.fromarray(lesion().astype(np.uint8) * 255).save(masks / "x.png")
    return Reference(picture(), lesion())


def _ct_dicom(root: Path) -> None:
    images, masks = pair_folders(root)
    write_dicom(images / "x.dcm", picture(), modality="CT")
    Image.fromarray(lesion().astype(np.uint8) * 255).save(masks / "x.png")


EXIF_ROTATE_90 = 6  # EXIF orientation "rotate 90 degrees clockwise to display"


def _exif_rotated(mask_as_stored: bool) -> Callable[[Path], Reference | None]:
    # a phone photo: the pixels are stored on their side and the EXIF tag turns them upright; the
    # annotator drew the mask on the upright picture (or, for the broken case, on the stored pixels)
    def make(root: Path) -> Reference | None:
        upright, mask = picture(), lesion()
        stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1)))
        exif = Image.Exif()
        exif[0x0112] = EXIF_ROTATE_90
        drawn = np.rot90(mask, k=1) if mask_as_stored else mask
        images, masks = pair_folders(root)
        stored.save(images / "x.png", exif=exif)
        Image.fromarray(np.ascontiguousarray(drawn).astype(np.uint8) * 255).save(masks / "x.png")
        return None if mask_as_stored else Reference(upright, mask)

    return make


def _tiny(root: Path) -> None:
    mask = np.array([[0, 255], [0, 0]], dtype=np.uint8)
    write_pair(root, "x", image=Image.fromarray(picture(shape=(2, 2))), mask=Image.fromarray(mask))


def _huge(root: Path) -> None:
    # a smooth ramp (compresses to a small PNG) rather than noise: 25 megapixels either way
    yy, xx = np.mgrid[0:5000, 0:5000]
    mask = np.zeros((5000, 5000), dtype=np.uint8)
    mask[1000:2000, 1500:3000] = 255
    write_pair(root, "x", image=Image.fromarray(((xx + yy) % 256).astype(np.uint8)), mask=Image.fromarray(mask))


def _jpeg(root: Path) -> Reference:
    write_pair(root, "x", ext=".jpg")
    with Image.open(root / "images" / "x.jpg") as decoded:
        return Reference(np.asarray(decoded.convert("L")), lesion())


def _mask_sized(shape: tuple[int, int]) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        write_pair(root, "x", mask=Image.fromarray(lesion(shape).astype(np.uint8) * 255))

    return make


def _mask_01(root: Path) -> Reference:
    write_pair(root, "x", mask=Image.fromarray(lesion().astype(np.uint8)))
    return Reference(picture(), lesion())


def _mask_colours(root: Path) -> Reference:
    # BUS-UCLM style: green and red lesions on black
    colours = np.zeros((*SHAPE, 3), dtype=np.uint8)
    colours[lesion()] = (0, 255, 0)
    colours[30:36, 30:40] = (255, 0, 0)
    write_pair(root, "x", mask=Image.fromarray(colours))
    return Reference(picture(), colours.any(axis=-1))


def _mask_grey_edge(root: Path) -> Reference:
    # a disc drawn at 4x and box-filtered down: its boundary pixels are grey, as in an anti-aliased drawing
    yy, xx = np.mgrid[0 : 4 * SHAPE[0], 0 : 4 * SHAPE[1]]
    disc = ((yy - 70) ** 2 + (xx - 90) ** 2 < 45**2).astype(np.uint8) * 255
    mask = np.asarray(Image.fromarray(disc).resize(SHAPE[::-1], Image.BOX))
    write_pair(root, "x", mask=Image.fromarray(mask))
    return Reference(picture(), mask > 0)


def _multi_page_tiff(root: Path) -> None:
    write_pair(root, "x")
    pages = [Image.fromarray(picture(seed)) for seed in range(3)]
    pages[0].save(root / "images" / "x.tif", save_all=True, append_images=pages[1:])
    (root / "images" / "x.png").unlink()


def _mask_jpeg(root: Path) -> Reference:
    write_pair(root, "x")
    (root / "masks" / "x.png").unlink()
    Image.fromarray(lesion().astype(np.uint8) * 255).save(root / "masks" / "x.jpg", quality=75)
    return Reference(picture(), lesion())


def _broken_link(root: Path) -> None:
    write_pair(root, "x")
    (root / "images" / "x.png").unlink()
    (root / "images" / "x.png").symlink_to(root / "moved" / "x.png")


def _image_without_mask(root: Path) -> None:
    write_pair(root, "x")
    (root / "masks" / "x.png").unlink()


def _mask_without_image(root: Path) -> None:
    write_pair(root, "x")
    (root / "images" / "x.png").unlink()


def _empty(root: Path) -> None:
    pair_folders(root)


def _malformed_datalist(root: Path) -> None:
    write_pair(root, "x")
    (root / "fold0.json").write_text('{"training": [{"image": "images/x.png",')


def _datalist_missing_files(root: Path) -> None:
    write_pair(root, "x")
    record = {"id": "gone", "image": "images/gone.png", "label": "masks/gone.png", "lesion": 1}
    (root / "fold0.json").write_text(json.dumps({"training": [record], "validation": [record], "test": [record]}))


SCREEN_AT = (150, 120)
SCAN_REGION = "cropped to the scan inside the screen; the mask comes back at the screen's size"
UNREADABLE = "stops: not a readable image"
READS_NO_MASKS = "inference reads images only"
READS_NO_DATALIST = "preparation writes datalists, it does not read them"
ANY_NON_ZERO = "any non-zero pixel (any channel) is lesion, stored as 0/255"
BIT_DEPTH = "scaled to 8 bits by its real bit depth (custom.imageio.decode)"
FLOAT = "scaled to 8 bits: values in [0, 1] times 255"
NON_FINITE = "non-finite (NaN or infinite) pixels"
ONE_BIT = "black and white as 0 and 255"
LUMA = "converted to RGB, then luma"
DICOM_LUMA = "colour as luma, as for a colour PNG"
DICOM_BY_CONTENT = "recognised by its content (the DICOM preamble), read as x.dcm"
EXIF = "turned upright by its EXIF orientation"
WIDE_COLOUR = "every sample at its full depth (not its high byte), scaled by its real bit depth, then luma"

CASES = [
    Case(
        "zero-byte",
        "zero-byte image file",
        _broken_image(lambda _: b""),
        Refused("images/x.png", "zero-byte file"),
        Refused("images/x.png", "is empty (0 bytes)"),
        Failed("images/x.png", "zero-byte file"),
    ),
    Case(
        "truncated",
        "PNG cut in half",
        _broken_image(lambda data: data[: len(data) // 2]),
        Refused("images/x.png", "not a readable image"),
        Refused("images/x.png", "not a readable image"),
        Failed("images/x.png", "not a readable image"),
    ),
    Case(
        "text-as-png",
        "text file named .png",
        _broken_image(lambda _: b"this is not a picture\n"),
        Refused("images/x.png", "not a readable image"),
        Refused("images/x.png", "not a readable image"),
        Failed("images/x.png", "not a readable image"),
    ),
    Case("16-bit", "16-bit grayscale PNG", _gray16, Handled(BIT_DEPTH), Handled(BIT_DEPTH), Handled(BIT_DEPTH)),
    Case(
        "palette",
        "palette PNG (grey levels in a shuffled palette)",
        _palette,
        Handled("the colours it shows, as luma"),
        Handled("the colours it shows, as luma"),
        Handled("the colours it shows, as luma"),
    ),
    Case(
        "rgba",
        "RGBA PNG (half-transparent)",
        _rgba,
        Handled("alpha dropped, colour as luma"),
        Handled("alpha dropped, colour as luma"),
        Handled("alpha dropped, colour as luma"),
    ),
    Case(
        "12-bit",
        "12-bit scanner data in a 16-bit PNG",
        _bit_depth(12),
        Handled(BIT_DEPTH),
        Handled(BIT_DEPTH),
        Handled(BIT_DEPTH),
    ),
    Case(
        "10-bit",
        "10-bit scanner data in a 16-bit PNG",
        _bit_depth(10),
        Handled(BIT_DEPTH),
        Handled(BIT_DEPTH),
        Handled(BIT_DEPTH),
    ),
    Case(
        "float-tiff",
        "32-bit float TIFF with values in [0, 1]",
        _float_tiff,
        Handled(FLOAT),
        Handled(FLOAT),
        Handled(FLOAT),
    ),
    Case(
        "nan-tiff",
        "float TIFF with a NaN pixel",
        _nan_tiff,
        Refused("images/x.tif", NON_FINITE),
        Refused("images/x.tif", NON_FINITE),
        Failed("images/x.tif", NON_FINITE),
    ),
    Case("int32-tiff", "32-bit integer TIFF", _int32_tiff, Handled(BIT_DEPTH), Handled(BIT_DEPTH), Handled(BIT_DEPTH)),
    Case("1-bit", "1-bit (black and white) image", _one_bit, Handled(ONE_BIT), Handled(ONE_BIT), Handled(ONE_BIT)),
    Case("cmyk", "CMYK TIFF", _cmyk_tiff, Handled(LUMA), Handled(LUMA), Handled(LUMA)),
    Case(
        "multi-page-tiff",
        "TIFF of 3 pages (a stack)",
        _multi_page_tiff,
        Refused("images/x.tif", "a TIFF of 3 pages"),
        Refused("images/x.tif", "a TIFF of 3 pages"),
        Failed("images/x.tif", "a TIFF of 3 pages"),
    ),
    Case(
        "dicom-rgb",
        "RGB DICOM ultrasound image",
        _dicom("RGB"),
        Handled(DICOM_LUMA),
        Handled(DICOM_LUMA),
        Handled(DICOM_LUMA),
    ),
    Case(
        "dicom-12-bit",
        "12-bit DICOM in 16-bit samples",
        _dicom(bits=12),
        Handled(BIT_DEPTH),
        Handled(BIT_DEPTH),
        Handled(BIT_DEPTH),
    ),
    Case(
        "dicom-jpeg-ybr",
        "JPEG-compressed colour DICOM (YBR_FULL_422), as scanners export",
        _jpeg_dicom,
        Handled(DICOM_LUMA),
        Handled(DICOM_LUMA),
        Handled(DICOM_LUMA),
    ),
    Case(
        "screen-capture",
        "scan inside a scanner screen (black borders, text bar, colour marks), as screen captures export",
        _screen_capture,
        Handled("kept whole: the crop is part of training, evaluation and inference"),
        Handled(SCAN_REGION),
        Handled(SCAN_REGION),
    ),
    Case(
        "dicom-no-extension",
        "DICOM without a file extension, as PACS export",
        _dicom_without_extension,
        Handled(DICOM_BY_CONTENT),
        Handled(DICOM_BY_CONTENT),
        Handled(DICOM_BY_CONTENT),
    ),
    Case(
        "dicom-truncated",
        "DICOM cut short",
        _broken_dicom,
        Refused("images/x.dcm", "not a readable DICOM image"),
        Refused("images/x.dcm", "not a readable DICOM image"),
        Failed("images/x.dcm", "not a readable DICOM image"),
    ),
    Case("rgb16-png", "16-bit RGB PNG of 12-bit data", _wide_colour(3), *[Handled(WIDE_COLOUR)] * 3),
    Case("rgba16-png", "16-bit RGBA PNG of 12-bit data", _wide_colour(4), *[Handled(WIDE_COLOUR)] * 3),
    Case("gray-alpha16-png", "16-bit grey+alpha PNG of 12-bit data", _wide_colour(2), *[Handled(WIDE_COLOUR)] * 3),
    Case("rgb16-tiff", "16-bit RGB TIFF of 12-bit data", _wide_colour(3, ".tif"), *[Handled(WIDE_COLOUR)] * 3),
    Case("rgb16-nrrd", "16-bit RGB NRRD of 12-bit data", _wide_colour(3, ".nrrd"), *[Handled(WIDE_COLOUR)] * 3),
    Case("rgba16-mha", "16-bit RGBA MetaImage of 12-bit data", _wide_colour(4, ".mha"), *[Handled(WIDE_COLOUR)] * 3),
    Case(
        "mask-rgb16",
        "16-bit RGB mask, lesion 1 in the red channel",
        _mask_rgb16,
        Handled(ANY_NON_ZERO),
        Handled("any non-zero value in any channel is lesion"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case("rgb-nifti", "RGB NIfTI (RGB24)", _rgb_nifti, *[Handled(DICOM_LUMA)] * 3),
    Case(
        "ct-dicom",
        "CT DICOM (Modality CT)",
        _ct_dicom,
        *[Refused("images/x.dcm", "not ultrasound")] * 2,
        Failed("images/x.dcm", "not ultrasound"),
    ),
    Case(
        "nan-nifti",
        "floating-point NIfTI with a NaN pixel",
        _nan_nifti,
        Refused("images/x.nii.gz", NON_FINITE),
        Refused("images/x.nii.gz", NON_FINITE),
        Failed("images/x.nii.gz", NON_FINITE),
    ),
    Case(
        "exif-rotated",
        "photo stored on its side with an EXIF orientation tag, mask drawn upright",
        _exif_rotated(mask_as_stored=False),
        Handled(EXIF),
        Handled(EXIF),
        Handled(EXIF + "; the mask is written upright"),
    ),
    Case(
        "exif-mask-mismatch",
        "EXIF-rotated image whose mask was drawn on the stored pixels",
        _exif_rotated(mask_as_stored=True),
        Refused("masks/x.png", "mask is 40x48 but its image is 48x40 (sizes after EXIF orientation"),
        Refused("masks/x.png", "mask is 40x48 but its image is 48x40 (sizes after EXIF orientation"),
        Handled(EXIF + "; the mask is written upright"),
    ),
    Case(
        "2x2",
        "2x2 image with a 2x2 mask",
        _tiny,
        Handled("kept at 2x2"),
        Handled("resized to the network input like any image"),
        Handled("mask written at 2x2"),
    ),
    Case(
        "5000x5000",
        "5000x5000 image and mask",
        _huge,
        Handled("kept at full size"),
        Handled("resized to the network input"),
        Handled("mask written at 5000x5000"),
    ),
    Case(
        "jpeg",
        "JPEG image",
        _jpeg,
        Handled("decoded, stored as PNG"),
        Handled("decoded like a PNG"),
        Handled("decoded like a PNG"),
    ),
    Case(
        "mask-larger",
        "mask 96x80 for a 48x40 image",
        _mask_sized((80, 96)),
        Refused("masks/x.png", "mask is 96x80 but its image is 48x40"),
        Refused("masks/x.png", "mask is 96x80 but its image is 48x40"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case(
        "mask-smaller",
        "mask 24x20 for a 48x40 image",
        _mask_sized((20, 24)),
        Refused("masks/x.png", "mask is 24x20 but its image is 48x40"),
        Refused("masks/x.png", "mask is 24x20 but its image is 48x40"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case(
        "mask-0-1",
        "mask with values {0, 1}",
        _mask_01,
        Handled(ANY_NON_ZERO),
        Handled("any non-zero value is lesion"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case(
        "mask-0-255",
        "mask with values {0, 255}",
        _ordinary("x"),
        Handled(ANY_NON_ZERO),
        Handled("any non-zero value is lesion"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case(
        "mask-colours",
        "RGB mask, green and red lesions",
        _mask_colours,
        Handled(ANY_NON_ZERO),
        Handled("any non-zero value in any channel is lesion"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case(
        "mask-grey-edge",
        "mask with a grey anti-aliased edge",
        _mask_grey_edge,
        Handled(ANY_NON_ZERO + ": the grey rim counts as lesion"),
        Handled("any non-zero value is lesion: the grey rim counts as lesion"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case(
        "broken-link",
        "image that is a link to a file moved away",
        _broken_link,
        Refused("images/x.png", "a broken link"),
        Refused("images/x.png", "does not exist"),
        Refused("images/x.png", "a broken link"),
    ),
    Case(
        "mask-jpeg",
        "JPEG mask (quality 75: faint values ring around the edge)",
        _mask_jpeg,
        Handled("lesion where any channel is at least 128: the ringing is not lesion"),
        Handled("lesion where any channel is at least 128: the ringing is not lesion"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case(
        "image-without-mask",
        "image without its mask",
        _image_without_mask,
        Refused("images/x.png", "missing mask"),
        Refused("images/x.png", "has no 'label'"),
        Handled("segmented (inference needs no mask)"),
    ),
    Case(
        "mask-without-image",
        "mask without its image",
        _mask_without_image,
        Refused("masks/x.png", "mask without its image"),
        Refused("fold0.json", "a record needs an 'image' path"),
        NotApplicable(READS_NO_MASKS),
    ),
    Case(
        "spaces",
        "file name with spaces",
        _ordinary("case one"),
        Handled("id and files keep the name"),
        Handled("read like any image"),
        Handled("outputs keep the name"),
    ),
    Case(
        "parentheses",
        "file name with parentheses",
        _ordinary("benign (3)"),
        Handled("id and files keep the name"),
        Handled("read like any image"),
        Handled("outputs keep the name"),
    ),
    Case(
        "non-ascii",
        "file name with non-ASCII characters",
        _ordinary("läsion_超声"),
        Handled("id and files keep the name"),
        Handled("read like any image"),
        Handled("outputs keep the name"),
    ),
    Case(
        "empty-folder",
        "empty folder",
        _empty,
        Refused("images", "empty images folder"),
        Refused("fold0.json", "does not exist"),
        Refused("images", "contains no PNG, JPEG, BMP, TIFF, DICOM, NIfTI, NRRD or MetaImage image"),
        good_cases=False,
    ),
    Case(
        "malformed-datalist",
        "datalist that is not valid JSON",
        _malformed_datalist,
        NotApplicable(READS_NO_DATALIST),
        Refused("fold0.json", "is not valid JSON"),
        Refused("fold0.json", "is not valid JSON"),
    ),
    Case(
        "datalist-missing-files",
        "datalist naming files that do not exist",
        _datalist_missing_files,
        NotApplicable(READS_NO_DATALIST),
        Refused("images/gone.png", "does not exist"),
        Refused("images/gone.png", "does not exist"),
    ),
]
IDS = [c.name for c in CASES]
STAGES = ("prepare", "train", "infer")


def _cases(stage: str, kind: type) -> list:
    return [pytest.param(c, id=c.name) for c in CASES if isinstance(getattr(c, stage), kind)]


# ---------------------------------------------------------------------------------------------------
# The table in docs/reliability.md
# ---------------------------------------------------------------------------------------------------


def _describe(outcome: Outcome) -> str:
    if isinstance(outcome, Refused):
        return f'stops, naming `{outcome.file}`: "{outcome.problem}"'
    if isinstance(outcome, Failed):
        return f'a failed row of `results.csv` naming `{outcome.file}`: "{outcome.problem}"; the others inferred, exit status 1'
    if isinstance(outcome, Handled):
        return outcome.what
    return f"n/a ({outcome.why})"


def corpus_table() -> str:
    """The markdown table of :data:`CASES`, as docs/reliability.md carries it."""
    rows = [
        "| input | `prepare_data.py folder` | training | inference |",
        "| --- | --- | --- | --- |",
        *(f"| {c.input} | {' | '.join(_describe(getattr(c, s)) for s in STAGES)} |" for c in CASES),
    ]
    return "\n".join(rows)


def test_every_kind_of_bad_input_file_has_a_case():
    assert len(set(IDS)) == len(IDS)
    assert {"zero-byte", "truncated", "text-as-png", "16-bit", "palette", "rgba", "2x2", "5000x5000", "jpeg"} <= set(
        IDS
    )
    assert {"mask-larger", "mask-smaller", "mask-0-1", "mask-0-255", "mask-colours", "mask-grey-edge"} <= set(IDS)
    assert {"image-without-mask", "mask-without-image", "spaces", "parentheses", "non-ascii", "empty-folder"} <= set(
        IDS
    )
    assert {"malformed-datalist", "datalist-missing-files"} <= set(IDS)
    # one decoder for every bit depth, colour mode and orientation
    decoding = {"12-bit", "10-bit", "float-tiff", "nan-tiff", "int32-tiff", "1-bit", "cmyk"}
    decoding |= {"dicom-rgb", "dicom-12-bit", "dicom-jpeg-ybr", "dicom-no-extension", "dicom-truncated", "nan-nifti"}
    decoding |= {"rgb-nifti", "ct-dicom", "rgb16-png", "rgba16-png", "gray-alpha16-png", "rgb16-tiff", "mask-rgb16"}
    decoding |= {"rgb16-nrrd", "rgba16-mha"}
    assert decoding | {"exif-rotated", "exif-mask-mismatch", "multi-page-tiff", "mask-jpeg"} <= set(IDS)


# ---------------------------------------------------------------------------------------------------
# Stage drivers
# ---------------------------------------------------------------------------------------------------


def build(case: Case, root: Path) -> Reference | None:
    """The case in ``root``, with three ordinary cases (two with a lesion) beside it unless it is the empty folder."""
    reference = case.make(root)
    if case.good_cases:
        for i in range(3):
            mask = lesion() if i < 2 else np.zeros(SHAPE, dtype=bool)
            write_pair(
                root, f"good_{i}", Image.fromarray(picture(10 + i)), Image.fromarray(mask.astype(np.uint8) * 255)
            )
    return reference


def records(root: Path, prefix: str = "") -> tuple[list[dict], list[dict]]:
    """Datalist records of the case files (``image`` and/or ``label`` as present) and of the ordinary ones."""
    found: dict[str, dict] = {}
    for key, folder in (("image", "images"), ("label", "masks")):
        for path in sorted((root / folder).glob("*")):
            found.setdefault(file_stem(path.name), {"id": prefix + file_stem(path.name)})[key] = str(path)
    good = [r for stem, r in found.items() if stem.startswith("good_")]
    return [r for stem, r in found.items() if not stem.startswith("good_")], good


def training_datalist(case: Case, root: Path) -> Path:
    """``<root>/fold0.json``: the case's own datalist, or one training on its files (none for an empty folder)."""
    datalist = root / "fold0.json"
    if not datalist.exists() and case.good_cases:
        cases, good = records(root)
        datalist.write_text(json.dumps({"training": cases, "validation": good, "test": cases}, ensure_ascii=False))
    return datalist


def assert_one_line(error: BaseException, root: Path, refused: Refused) -> None:
    """The error a bundle run prints in one line names the file and the problem."""
    from custom.errors import one_line

    message = one_line(error)
    assert message is not None, f"would print a traceback: {error!r}"
    assert str(root / refused.file) in message and refused.problem in message, message


def preprocess(config: str, key: str, record: dict) -> dict:
    """The deterministic preprocessing a config applies to ``record`` (spatial size 32x32)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / config))
    parser.update({"spatial_size": [32, 32], "dataset_dir": str(REPO)})
    return parser.get_parsed_content(key)(record)


def write_reference(reference: Reference, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(reference.image).save(folder / "reference.png")
    Image.fromarray(reference.mask.astype(np.uint8) * 255).save(folder / "reference_mask.png")
    return {"image": str(folder / "reference.png"), "label": str(folder / "reference_mask.png")}


# ---------------------------------------------------------------------------------------------------
# Preparation (scripts/prepare_data.py folder)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("prepare", Refused))
def test_preparation_refuses(case, tmp_path):
    from custom.data.folder import prepare_folder
    from custom.errors import DataError

    build(case, tmp_path)
    with pytest.raises(DataError) as error:
        prepare_folder(str(tmp_path / "images"), str(tmp_path / "masks"), str(tmp_path / "out"), folds=3)
    assert_one_line(error.value, tmp_path, case.prepare)
    assert not (tmp_path / "out" / "datalist.json").exists()


@pytest.mark.parametrize("case", _cases("prepare", Handled))
def test_preparation_handles(case, tmp_path):
    from custom.data.folder import prepare_folder

    reference = build(case, tmp_path)
    prepare_folder(str(tmp_path / "images"), str(tmp_path / "masks"), str(tmp_path / "out"), folds=3)
    (source,) = [p for p in (tmp_path / "images").iterdir() if not p.stem.startswith("good_")]
    stem = file_stem(source.name)
    record = {r["id"]: r for r in json.loads((tmp_path / "out" / "datalist.json").read_text())["all"]}[stem]
    assert record["image"] == f"images/{stem}.png"
    image = np.asarray(Image.open(tmp_path / "out" / record["image"]))
    mask = np.asarray(Image.open(tmp_path / "out" / record["label"]))
    assert image.shape == image_size(source)[::-1]  # the size a viewer shows (EXIF orientation applied)
    assert set(np.unique(mask).tolist()) <= {0, 255} and record["lesion"] == int(mask.any())
    if reference is not None:
        assert np.array_equal(image, reference.image)
        assert np.array_equal(mask > 0, reference.mask)


def test_preparation_cli_prints_one_line_and_exits_1(tmp_path):
    build(CASES[IDS.index("truncated")], tmp_path)
    cmd = [
        sys.executable,
        "scripts/prepare_data.py",
        "folder",
        "--images",
        str(tmp_path / "images"),
        "--masks",
        str(tmp_path / "masks"),
        "--out",
        str(tmp_path / "out"),
        "--folds",
        "3",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'images' / 'x.png'}: not a readable image"), line


# ---------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("train", Refused))
def test_training_refuses(case, tmp_path):
    build(case, tmp_path)
    training_datalist(case, tmp_path)
    with pytest.raises(Exception) as error:
        bundle_run("training", "train.json", dataset_dir=str(tmp_path), output_dir=str(tmp_path / "out"), **TINY)
    assert_one_line(error.value, tmp_path, case.train)
    assert not list((tmp_path / "out").glob("*.pt"))


@pytest.mark.parametrize("case", _cases("train", Handled))
def test_training_preprocessing_handles(case, tmp_path):
    reference = build(case, tmp_path)
    (record,), _ = records(tmp_path)
    sample = preprocess("train.json", "validate#preprocessing", record)
    assert sample["image"].shape == (3, 32, 32) and sample["label"].shape == (1, 32, 32)
    assert np.isfinite(sample["image"].numpy()).all() and set(np.unique(sample["label"].numpy())) <= {0.0, 1.0}
    if reference is not None:
        expected = preprocess("train.json", "validate#preprocessing", write_reference(reference, tmp_path / "ref"))
        np.testing.assert_allclose(sample["image"].numpy(), expected["image"].numpy(), atol=1e-5)
        assert np.array_equal(sample["label"].numpy(), expected["label"].numpy())
        assert int(sample["cls"]) == int(reference.mask.any())


@pytest.mark.parametrize(
    ("config", "key"), [("train.json", "validate#preprocessing"), ("inference.json", "preprocessing")]
)
def test_a_screen_capture_is_preprocessed_as_its_scan(config, key, tmp_path):
    """Training, evaluation and inference see the scan of a screen capture as they see the scan alone."""
    case = CASES[IDS.index("screen-capture")]
    build(case, tmp_path)
    (record,), _ = records(tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    lesion_scan().save(plain / "x.png")
    Image.fromarray(lesion_scan_mask().astype(np.uint8) * 255).save(plain / "x_mask.png")
    keys = ("image", "label") if config == "train.json" else ("image",)
    sample = preprocess(config, key, {k: record[k] for k in keys})
    expected = preprocess(config, key, {k: str(plain / f) for k, f in zip(keys, ("x.png", "x_mask.png"))})
    assert list(sample["image"].meta["scan_region"]) == [150, 120, 550, 420]
    np.testing.assert_allclose(sample["image"].numpy(), expected["image"].numpy(), atol=1e-5)
    if "label" in keys:
        assert np.array_equal(sample["label"].numpy(), expected["label"].numpy())


@pytest.mark.slow
def test_training_runs_on_every_handled_case_together(tmp_path):
    training, validation = [], []
    for case in CASES:
        if isinstance(case.train, Handled):
            build(case, tmp_path / case.name)
            cases, good = records(tmp_path / case.name, prefix=f"{case.name}/")
            training += cases
            validation = validation or good
    (tmp_path / "fold0.json").write_text(
        json.dumps({"training": training, "validation": validation}, ensure_ascii=False)
    )
    bundle_run("training", "train.json", dataset_dir=str(tmp_path), output_dir=str(tmp_path / "out"), **TINY)
    (log,) = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert log["epoch"] == 1 and np.isfinite(log["train_loss"])
    assert (tmp_path / "out" / "checkpoint_epoch=1.pt").is_file()


# ---------------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------------


def inference_input(case: Case, root: Path) -> dict:
    """``--input_dir <root>/images``, or ``--datalist`` for the datalist cases."""
    if (root / "fold0.json").exists():
        return {"datalist": str(root / "fold0.json")}
    return {"input_dir": str(root / "images"), "dataset_dir": str(root)}


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory) -> Path:
    return save_untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


def _infer(case, tmp_path: Path, checkpoint: Path) -> None:
    """The README's inference command on the case's input, into ``tmp_path/out``, with an untrained network."""
    bundle_run(
        "run",
        "inference.json",
        output_dir=str(tmp_path / "out"),
        ckpt_path=str(checkpoint),
        spatial_size=[32, 32],
        **inference_input(case, tmp_path),
    )


@pytest.mark.parametrize("case", _cases("infer", Refused))
def test_inference_refuses(case, tmp_path, untrained_checkpoint):
    build(case, tmp_path)
    with pytest.raises(Exception) as error:
        _infer(case, tmp_path, untrained_checkpoint)
    assert_one_line(error.value, tmp_path, case.infer)


@pytest.mark.parametrize("case", _cases("infer", Failed))
def test_inference_goes_on_past_a_file_it_cannot_read(case, tmp_path, untrained_checkpoint):
    build(case, tmp_path)
    with pytest.raises(SystemExit) as stop:
        _infer(case, tmp_path, untrained_checkpoint)
    assert stop.value.code == 1  # the number of failed files
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(f)}
    failed = rows.pop(Path(case.infer.file).name)
    assert failed["file"] == str(tmp_path / case.infer.file) and failed["status"] == "failed"
    assert case.infer.problem in failed["warnings"]
    assert sorted(rows) == [f"good_{i}.png" for i in range(3)] and {r["status"] for r in rows.values()} == {"ok"}
    assert all((tmp_path / "out" / f"good_{i}_seg.png").is_file() for i in range(3))


@pytest.mark.parametrize("case", _cases("infer", Handled))
def test_inference_preprocessing_handles(case, tmp_path):
    reference = build(case, tmp_path)
    (record,), _ = records(tmp_path)
    sample = preprocess("inference.json", "preprocessing", {"image": record["image"]})
    assert sample["image"].shape == (3, 32, 32) and np.isfinite(sample["image"].numpy()).all()
    if reference is not None:
        expected = preprocess(
            "inference.json", "preprocessing", {"image": write_reference(reference, tmp_path / "ref")["image"]}
        )
        np.testing.assert_allclose(sample["image"].numpy(), expected["image"].numpy(), atol=1e-5)


@pytest.mark.slow
def test_inference_runs_on_every_handled_case_together(tmp_path, untrained_checkpoint):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for case in CASES:
        if isinstance(case.infer, Handled):
            build(case, tmp_path / case.name)
            (record,), _ = records(tmp_path / case.name)
            shutil.copy(record["image"], inputs / f"{case.name} {Path(record['image']).name}")
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    out = tmp_path / "out"
    bundle_run(
        "run",
        "inference.json",
        dataset_dir=str(tmp_path),
        input_dir=str(inputs),
        output_dir=str(out),
        ckpt_path=str(untrained_checkpoint),
        spatial_size=[32, 32],
    )
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before  # inputs untouched
    for name in before:
        stem = file_stem(name)
        suffix = mask_suffix(inputs / name)
        if suffix is not None:  # a volume format: the mask in the input's format
            (frame,) = read_frames(out / f"{stem}_seg{suffix}")
            assert frame.pixels.shape[:2] == read_frames(inputs / name)[0].pixels.shape[:2], name
            assert set(np.unique(frame.pixels).tolist()) <= {0, 1, 255}, name
        else:
            with Image.open(out / f"{stem}_seg.png") as mask:
                assert mask.size == image_size(inputs / name), name  # the displayed size (EXIF orientation applied)
                assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}, name
        assert json.loads((out / f"{stem}.json").read_text())["predicted_class"] in ("normal", "lesion")
