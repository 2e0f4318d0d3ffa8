"""Inputs the tests make for themselves (no binary fixtures): speckle pictures, lesion masks,
image/mask folders, ultrasound DICOMs, untrained checkpoints, and a bundle run in this process."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from conftest import CONFIGS
from PIL import Image, ImageDraw
from scipy import ndimage

SHAPE = (40, 48)  # height, width of the ordinary generated images


def picture(seed: int = 0, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Speckle-like 8-bit pixels spanning 0..255 (so a min-max rescale maps them the same whatever their depth)."""
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    pixels.flat[:2] = (0, 255)
    return pixels


def lesion(shape: tuple[int, int] = SHAPE) -> np.ndarray:
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    mask[h // 4 : h // 2, w // 4 : w // 2] = True
    return mask


def pair_folders(root: Path) -> tuple[Path, Path]:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    return root / "images", root / "masks"


def write_pair(
    root: Path, stem: str, image: Image.Image | None = None, mask: Image.Image | None = None, ext: str = ".png"
):
    """``images/<stem><ext>`` and ``masks/<stem>.png``: by default an ordinary gray image and a 0/255 mask."""
    images, masks = pair_folders(root)
    (image or Image.fromarray(picture())).save(images / f"{stem}{ext}")
    (mask or Image.fromarray(lesion().astype(np.uint8) * 255)).save(masks / f"{stem}.png")


def write_png16(path: Path, samples: np.ndarray) -> Path:
    """A 16-bit PNG of ``samples`` (``(H, W, C)`` uint16: 2 grey and alpha, 3 RGB, 4 RGBA), which PIL cannot write."""
    import struct
    import zlib

    height, width, channels = samples.shape
    colour_type = {2: 4, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\0" + samples[r].astype(">u2").tobytes() for r in range(height))  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


# the sample types of NRRD and MetaImage headers, by numpy type
_NRRD_TYPES = {"u1": "uint8", "u2": "uint16", "i2": "int16", "u4": "uint32", "f4": "float"}
_META_TYPES = {"u1": "MET_UCHAR", "u2": "MET_USHORT", "i2": "MET_SHORT", "u4": "MET_UINT", "f4": "MET_FLOAT"}


def _geometry(samples: np.ndarray, spacing: tuple[float, float]) -> tuple[tuple[int, ...], str]:
    """The sizes of a colour volume's axes in file order (x, y[, frames]) and their spacings, as headers write them."""
    spatial = samples.shape[:-1][::-1]
    return spatial, " ".join(map(str, (spacing[1], spacing[0], 1.0)[: len(spatial)]))


def write_colour_nrrd(path: Path, samples: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> Path:
    """An NRRD of ``samples`` (``([frames,] H, W, C)``, C 3: RGB, 4: RGBA), spacing (rows, columns) in mm, as a
    scanner export or 3D Slicer writes colour: the colour axis first. Written by hand: ITK Python cannot
    write 16-bit colour."""
    channels, (spatial, spacings) = samples.shape[-1], _geometry(samples, spacing)
    header = (
        f"NRRD0004\ntype: {_NRRD_TYPES[samples.dtype.str[1:]]}\ndimension: {samples.ndim}\n"
        f"sizes: {channels} {' '.join(map(str, spatial))}\nkinds: {'RGB' if channels == 3 else 'RGBA'}-color"
        f"{' domain' * len(spatial)}\nspacings: nan {spacings}\nendian: little\nencoding: raw\n\n"
    )
    path.write_bytes(header.encode() + samples.astype(samples.dtype.newbyteorder("<")).tobytes())
    return path


def write_colour_metaimage(path: Path, samples: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> Path:
    """A MetaImage (``.mha``) of ``samples`` (``([frames,] H, W, C)``, C channels), spacing (rows, columns) in mm."""
    spatial, spacings = _geometry(samples, spacing)
    header = (
        f"ObjectType = Image\nNDims = {len(spatial)}\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        f"DimSize = {' '.join(map(str, spatial))}\nElementNumberOfChannels = {samples.shape[-1]}\n"
        f"ElementSpacing = {spacings}\nElementType = {_META_TYPES[samples.dtype.str[1:]]}\nElementDataFile = LOCAL\n"
    )
    path.write_bytes(header.encode() + samples.astype(samples.dtype.newbyteorder("<")).tobytes())
    return path


def bundle_run(run_id: str, config: str, **overrides):
    """``python -m monai.bundle run`` in this process (same entry point, no new interpreter per case)."""
    from monai.bundle import run

    return run(run_id, config_file=str(CONFIGS / config), logging_file=False, **overrides)


def save_untrained_checkpoint(path: Path, seed: int = 0, **settings: Any) -> Path:
    """inference.json's network with its initial weights, saved as training saves ``model.pt`` (no training needed).

    The weights are drawn from ``seed`` (the caller's random state is left as it was), so a test's outputs are the
    same on every run: unseeded, a test that passed for most draws failed for the rare one. Other seeds give other
    networks (the members of an ensemble). ``settings`` override top-level keys (``classifier_input="decoder"``)."""
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser.update({"classifier_input": "bottleneck", **settings})
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        network = parser.get_parsed_content("network_def")
    torch.save({"model": network.state_dict()}, path)
    return path


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    region_cm: tuple[float, float] | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    bits_stored: int = 8,
    signed: bool = False,
    modality: str = "US",
) -> Path:
    """An ultrasound (or ``modality``) DICOM of ``pixels``: ``(H, W)``, ``(H, W, 3)``, or ``(frames, H, W[, 3])``
    with ``frames`` > 1.

    8-bit samples, or 16-bit ones holding ``bits_stored`` bits when that is more than 8 (two's complement
    when ``signed``); uncompressed, with the study, series and instance UIDs every scanner writes.
    """
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        UltrasoundImageStorage,
        UltrasoundMultiFrameImageStorage,
        generate_uid,
    )

    colour = photometric.startswith(("RGB", "YBR"))
    frames = pixels.shape[0] if pixels.ndim == (4 if colour else 3) else 1
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage if frames > 1 else UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = modality, "P0"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    allocated = 8 if bits_stored <= 8 else 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    if region_cm is not None:
        region = Dataset()
        region.RegionSpatialFormat, region.RegionDataType = 1, 1
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # centimetres
        region.PhysicalDeltaX, region.PhysicalDeltaY = region_cm
        ds.SequenceOfUltrasoundRegions = Sequence([region])
    if pixel_spacing is not None:
        ds.PixelSpacing = list(pixel_spacing)
    dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16}[allocated, signed]
    ds.PixelData = np.ascontiguousarray(pixels, dtype=dtype).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    """``rgb`` ``(H, W, 3)`` as a JPEG, YCbCr with 4:2:2 chroma subsampling, encoded by Pillow."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality, subsampling="4:2:2")
    return buffer.getvalue()


def write_jpeg_dicom(path: Path, rgb: np.ndarray, quality: int = 95) -> Path:
    """``rgb`` (``(H, W, 3)``, or ``(frames, H, W, 3)``) as a JPEG baseline ultrasound DICOM, ``YBR_FULL_422``:
    the usual scanner export, one Pillow-encoded JPEG per frame (pydicom 3 encodes no JPEG baseline itself)."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    write_dicom(path, rgb, "RGB")
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([jpeg_bytes(frame, quality) for frame in (rgb if rgb.ndim == 4 else rgb[None])])
    ds["PixelData"].VR = "OB"
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    return path


def lesion_scan(height: int = 300, width: int = 400, seed: int = 3) -> Image.Image:
    """A BUSI-like scan with a lesion: speckle fading with depth (less than ``test_scan_region.speckle``)
    and a hypoechoic ellipse, blurred like a scanner's point-spread function. The released model calls it
    lesion and masks the ellipse, so the full-screen check needs no dataset."""
    rng = np.random.default_rng(seed)
    picture = 150 * np.linspace(1.0, 0.35, height)[:, None] * rng.rayleigh(1.0, (height, width))
    picture[lesion_scan_mask(height, width)] *= 0.18
    return Image.fromarray(np.clip(ndimage.gaussian_filter(picture, 1.0), 0, 255).astype(np.uint8))


def lesion_scan_mask(height: int = 300, width: int = 400) -> np.ndarray:
    """The lesion of :func:`lesion_scan`, ``(H, W)`` bool."""
    rows, cols = np.mgrid[:height, :width]
    return ((rows - 0.43 * height) / 45) ** 2 + ((cols - width / 2) / 70) ** 2 < 1


def screen_of(scan: Image.Image, at: tuple[int, int] = (150, 120)) -> Image.Image:
    """``scan`` pasted at ``at`` into a synthetic scanner screen: black borders, a grey bar of white text at the top,
    text below, a colour body-marker box, colour dots and lines."""
    w, h = scan.size
    screen = Image.new("RGB", (w + 2 * at[0] - 40, h + at[1] + 80), (0, 0, 0))
    draw = ImageDraw.Draw(screen)
    draw.rectangle([0, 0, screen.width, 60], fill=(40, 40, 60))
    for i in range(6):
        draw.text((20 + i * 120, 20), f"GAIN {i * 7} DR 60 MI 1.{i}", fill=(255, 255, 255))
    draw.text((10, screen.height - 30), "L12-5 BREAST 4.0cm FR 30Hz", fill=(200, 200, 200))
    draw.rectangle(
        [screen.width - 70, screen.height - 70, screen.width - 20, screen.height - 20], outline=(255, 200, 0)
    )
    draw.ellipse([20, 200, 45, 225], fill=(0, 200, 255))
    draw.line([(30, 300), (60, 330)], fill=(255, 0, 0), width=3)
    screen.paste(scan.convert("RGB"), at)
    return screen
