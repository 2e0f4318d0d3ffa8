"""Reading the medical-imaging formats ultrasound leaves the scanner in: DICOM, NIfTI, NRRD and MetaImage.

Each file becomes a list of :class:`Frame` s: a 2D picture (rows, columns; grayscale, or colour with
its channels last) with its pixel spacing in millimetres when the file states one. A multi-frame
DICOM (a cine loop) gives one frame per image, and so does the third axis of a NIfTI, NRRD or
MetaImage volume, whose slices are the frames. :func:`custom.data.io.decode_pixels` then makes each
frame the 8-bit grayscale picture the network reads, by the same rules as every PNG or JPEG.

- **DICOM** (pydicom): grayscale (``MONOCHROME2``; ``MONOCHROME1`` is inverted, its 0 being white),
  ``RGB``, ``YBR_FULL`` and ``YBR_FULL_422`` (converted to RGB), palette colour; spacing from the
  Sequence of Ultrasound Regions (``PhysicalDeltaX/Y`` of the first region measured in centimetres)
  or else ``PixelSpacing``.
- **NIfTI** (nibabel), **NRRD**, **MHA/MHD** (ITK): the first two axes are the picture's columns and
  rows (x and y, as MONAI lays out 2D images), spacing from the header's voxel sizes.
"""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custom.data.errors import DataError

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
MEDICAL_SUFFIXES = DICOM_SUFFIXES + NIFTI_SUFFIXES + ITK_SUFFIXES
_FORMAT_NAMES = {
    ".dcm": "DICOM",
    ".dicom": "DICOM",
    ".nii": "NIfTI",
    ".nii.gz": "NIfTI",
    ".nrrd": "NRRD",
    ".nhdr": "NRRD",
}
_FORMAT_NAMES |= {".mha": "MetaImage", ".mhd": "MetaImage"}

# The Sequence of Ultrasound Regions states its deltas in these units; 3 is centimetres (DICOM PS3.3 C.8.5.5.1.15)
_CENTIMETRES = 3


@dataclass
class Frame:
    """One 2D picture of a medical file.

    Attributes:
        pixels: ``(H, W)`` or ``(H, W, C)`` array (rows first, channels last), in the file's own values.
        spacing: millimetres per pixel along rows and columns, or None when the file states none.
    """

    pixels: np.ndarray
    spacing: tuple[float, float] | None = None


def medical_suffix(name: str) -> str | None:
    """The medical-format suffix ``name`` ends with (any case), or None."""
    lower = name.lower()
    return next((s for s in MEDICAL_SUFFIXES if lower.endswith(s)), None)


def is_dicom_name(name: str) -> bool:
    return name.lower().endswith(DICOM_SUFFIXES)


def read_frames(path: Path) -> list[Frame]:
    """The frames of the medical file at ``path``; :class:`DataError` naming the file when it cannot be read.

    The last two files read are kept (keyed by their modification time): reading a cine loop frame by
    frame decodes it once, not once per frame.
    """
    stat = path.stat()
    return _read_frames(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_frames(name: str, mtime_ns: int, size: int) -> list[Frame]:
    path = Path(name)
    suffix = medical_suffix(path.name)
    try:
        if suffix in DICOM_SUFFIXES:
            return _dicom_frames(path)
        if suffix in NIFTI_SUFFIXES:
            return _nifti_frames(path)
        if suffix in ITK_SUFFIXES:
            return _itk_frames(path)
    except DataError:
        raise
    except Exception as e:  # pydicom, nibabel and ITK raise their own errors (and RuntimeError, OSError) for bad files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable {_FORMAT_NAMES[suffix]} image ({reason})") from e
    raise DataError(f"{path}: not a medical image format this package reads ({', '.join(MEDICAL_SUFFIXES)})")


def frame_count(path: Path) -> int:
    """How many frames :func:`read_frames` gives for ``path``, from the header where the format allows."""
    if medical_suffix(path.name) in DICOM_SUFFIXES:
        import pydicom

        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as e:  # InvalidDicomError, OSError, ...
            raise DataError(f"{path}: not a readable DICOM file ({e})") from e
        return int(getattr(header, "NumberOfFrames", 1) or 1)
    return len(read_frames(path))


# ---------------------------------------------------------------- DICOM
def _dicom_frames(path: Path) -> list[Frame]:
    import pydicom

    try:  # pydicom 3
        from pydicom.pixels import apply_color_lut, convert_color_space
    except ImportError:  # pydicom 2 (MONAI Label's pydicom-seg needs it)
        from pydicom.pixel_data_handlers.util import apply_color_lut, convert_color_space

    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        raise DataError(f"{path}: DICOM file without pixel data")
    pixels = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric.startswith("YBR_FULL") and not ds.file_meta.TransferSyntaxUID.is_compressed:
        # uncompressed YBR is returned as stored; compressed YBR is converted to RGB by its JPEG decoder
        pixels = convert_color_space(pixels, photometric, "RGB", per_frame=True)
    elif photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    elif photometric == "MONOCHROME1":
        pixels = pixels.max() - pixels  # 0 is white in MONOCHROME1
    if frames == 1:
        pixels = pixels[None]
    spacing = _dicom_spacing(ds)
    return [Frame(np.asarray(frame), spacing) for frame in pixels]


def _dicom_spacing(ds: Any) -> tuple[float, float] | None:
    """Millimetres per pixel (rows, columns): the first ultrasound region in centimetres, else ``PixelSpacing``."""
    for region in getattr(ds, "SequenceOfUltrasoundRegions", None) or []:
        units = (getattr(region, "PhysicalUnitsXDirection", None), getattr(region, "PhysicalUnitsYDirection", None))
        if units == (_CENTIMETRES, _CENTIMETRES):
            dx, dy = float(region.PhysicalDeltaX), float(region.PhysicalDeltaY)
            if dx > 0 and dy > 0:
                return (abs(dy) * 10.0, abs(dx) * 10.0)
    spacing = getattr(ds, "PixelSpacing", None)
    if spacing is not None and len(spacing) == 2 and all(float(v) > 0 for v in spacing):
        return (float(spacing[0]), float(spacing[1]))
    return None


# ---------------------------------------------------------------- NIfTI, NRRD, MetaImage
def _slices(volume: np.ndarray, path: Path) -> list[np.ndarray]:
    """``(H, W)`` pictures from an array whose first two axes are x (columns) and y (rows)."""
    if volume.ndim == 2:
        volume = volume[..., None]
    if volume.ndim != 3 or min(volume.shape[:2]) < 1:
        raise DataError(f"{path}: expected a 2D image or a stack of 2D frames, got shape {volume.shape}")
    return [np.ascontiguousarray(volume[:, :, k].T) for k in range(volume.shape[2])]


def _nifti_frames(path: Path) -> list[Frame]:
    import nibabel

    image = nibabel.load(str(path))
    volume = np.asarray(image.dataobj)
    while volume.ndim > 3 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    zooms = image.header.get_zooms()
    spacing = (float(zooms[1]), float(zooms[0])) if len(zooms) >= 2 and min(zooms[:2]) > 0 else None
    return [Frame(s, spacing) for s in _slices(volume, path)]


def _itk_frames(path: Path) -> list[Frame]:
    import itk

    image = itk.imread(str(path))
    # ITK's arrays are indexed backwards ([z,] y, x): back to x, y[, z] as NIfTI and MONAI lay them out
    volume = itk.array_from_image(image)
    components = image.GetNumberOfComponentsPerPixel()
    if components > 1:
        raise DataError(f"{path}: {components}-component pixels; expected a grayscale image")
    volume = volume.transpose(tuple(range(volume.ndim))[::-1])
    sx, sy = (float(v) for v in tuple(image.GetSpacing())[:2])
    return [Frame(s, (sy, sx) if sx > 0 and sy > 0 else None) for s in _slices(volume, path)]


# ---------------------------------------------------------------- masks in the input's geometry
# detached headers would need their data file renamed with them: their masks are written as the single-file variant
_MASK_SUFFIX = {
    ".nii": ".nii.gz",
    ".nii.gz": ".nii.gz",
    ".nrrd": ".nrrd",
    ".nhdr": ".nrrd",
    ".mha": ".mha",
    ".mhd": ".mha",
}


def mask_suffix(source: str) -> str | None:
    """The suffix of the mask written for input ``source`` in its own family, or None (DICOM, pictures: PNG)."""
    return _MASK_SUFFIX.get(medical_suffix(source) or "")


def write_mask_like(source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
    """Writes ``mask`` (``(H, W)`` uint8) to ``path`` with the geometry of frame ``frame`` of ``source``.

    NIfTI: the input's affine and header, one slice (the frame's, its origin moved along the third
    axis); NRRD and MetaImage: the input's spacing, origin and direction. Written to a hidden sibling
    first and renamed, so a reader never sees half a file.
    """
    suffix = medical_suffix(source.name)
    tmp = path.parent / f".{uuid.uuid4().hex}{mask_suffix(source.name)}"
    try:
        if suffix in NIFTI_SUFFIXES:
            _write_nifti_like(source, frame, mask, tmp)
        elif suffix in ITK_SUFFIXES:
            _write_itk_like(source, frame, mask, tmp)
        else:
            raise ValueError(f"{source}: masks are written in the input's format for NIfTI, NRRD and MetaImage only")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_nifti_like(source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
    import nibabel

    image = nibabel.load(str(source))
    data = mask.T  # (x, y), as the input stores it
    if len(image.shape) > 2:
        data = data[:, :, None]
    affine = image.affine.copy()
    affine[:3, 3] += affine[:3, 2] * frame  # the frame's slice of a stack
    header = image.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_data_shape(data.shape)
    nibabel.save(nibabel.Nifti1Image(data.astype(np.uint8), affine, header), str(path))


def _write_itk_like(source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
    import itk

    reader = itk.ImageFileReader.New(FileName=str(source))
    reader.UpdateOutputInformation()  # the geometry alone, not the pixels
    geometry = reader.GetOutput()
    dims = geometry.GetImageDimension()
    out = itk.image_from_array(np.ascontiguousarray(mask.astype(np.uint8).reshape((1,) * (dims - 2) + mask.shape)))
    out.SetSpacing(geometry.GetSpacing())
    out.SetDirection(geometry.GetDirection())
    origin = np.array(geometry.GetOrigin(), dtype=float)
    if dims > 2:  # the frame's slice of a stack
        direction = itk.array_from_matrix(geometry.GetDirection())
        origin += direction[:, 2] * float(geometry.GetSpacing()[2]) * frame
    out.SetOrigin(origin.tolist())
    itk.imwrite(out, str(path), compression=True)
