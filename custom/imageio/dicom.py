"""Reading DICOM ultrasound (pydicom 3 with the pylibjpeg and pyjpegls plugins).

- Ultrasound only: a CT, MR or X-ray Modality is refused (:data:`ULTRASOUND_MODALITIES`).
- Every transfer syntax scanners write: uncompressed, JPEG baseline and extended, JPEG lossless,
  JPEG-LS, JPEG 2000, RLE.
- Grayscale (``MONOCHROME2``; ``MONOCHROME1`` is inverted over its bit range, its 0 being white), signed
  and up to 16-bit samples, ``RGB``, ``YBR_FULL`` and ``YBR_FULL_422`` (converted to RGB), palette colour.
- A multi-frame DICOM (a cine loop) gives one frame per image.
- Spacing from the Sequence of Ultrasound Regions (``PhysicalDeltaX/Y`` of the first region measured in
  centimetres), else ``PixelSpacing``; the scan's box from the same sequence (:class:`~custom.imageio.base.Frame`
  ``region``).

A DICOM input's mask is written as a PNG and as a DICOM Segmentation (:mod:`custom.imageio.dicom_seg`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from custom.errors import DataError
from custom.imageio.base import Frame, MedicalCodec

# The modalities read as ultrasound: ultrasound itself, intravascular ultrasound, "other" (secondary captures
# and converted files often say OT) and none stated. A CT, MR, X-ray, ... image would be classified as if it
# were breast ultrasound, a meaningless answer given without a word.
ULTRASOUND_MODALITIES = ("US", "IVUS", "OT", "")

# The Sequence of Ultrasound Regions states its deltas in these units; 3 is centimetres (DICOM PS3.3 C.8.5.5.1.15)
_CENTIMETRES = 3

_REFERENCE_UIDS = {
    "study_instance_uid": "StudyInstanceUID",
    "series_instance_uid": "SeriesInstanceUID",
    "sop_instance_uid": "SOPInstanceUID",
    "frame_of_reference_uid": "FrameOfReferenceUID",
}


class DicomCodec(MedicalCodec):
    """DICOM ultrasound images, single- or multi-frame (see the module's docstring)."""

    def read_frames(self, path: Path) -> list[Frame]:
        """One frame per image of the file, with the spacing and scan region its header states."""
        import pydicom
        from pydicom.pixels import apply_color_lut, pixel_array

        ds = pydicom.dcmread(path)
        if "PixelData" not in ds:
            raise DataError(f"{path}: DICOM file without pixel data")
        modality = str(getattr(ds, "Modality", "") or "").upper()
        if modality not in ULTRASOUND_MODALITIES:
            raise DataError(
                f"{path}: a {modality} image (DICOM Modality {modality}), not ultrasound; the model reads breast "
                "ultrasound only and would classify it as one"
            )
        # as_rgb: YBR_FULL and YBR_FULL_422, stored or JPEG-compressed, come back as RGB
        pixels = pixel_array(ds, as_rgb=True)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
        if photometric == "PALETTE COLOR":
            pixels = apply_color_lut(pixels, ds)
        elif photometric == "MONOCHROME1":
            pixels = _invert(pixels, int(ds.BitsStored), signed=int(getattr(ds, "PixelRepresentation", 0)) == 1)
        if frames == 1:
            pixels = pixels[None]
        spacing, region = dicom_spacing(ds), _dicom_region(ds)
        return [Frame(np.asarray(frame), spacing, region) for frame in pixels]

    def count_frames(self, path: Path) -> int:
        """``NumberOfFrames`` from the header, without decoding the pixels."""
        import pydicom

        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as e:  # InvalidDicomError, OSError, ...
            raise DataError(f"{path}: not a readable DICOM file ({e})") from e
        return int(getattr(header, "NumberOfFrames", 1) or 1)


DICOM_SUFFIXES = (".dcm", ".dicom")
DICOM = DicomCodec("DICOM", DICOM_SUFFIXES)


def _invert(pixels: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """MONOCHROME1 pixels as MONOCHROME2: mirrored over the range of ``bits`` bits, whose lowest value is white.

    Over the stored bit range, not the image's own, so an inverted image keeps its contrast: a
    picture without pure white does not become one whose darkest pixel is black.
    """
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return np.clip((low + high) - pixels.astype(np.int64), low, high).astype(pixels.dtype)


def dicom_spacing(ds: Any) -> tuple[float, float] | None:
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


def _dicom_region(ds: Any) -> tuple[int, int, int, int] | None:
    """The box of the scan (:class:`Frame` ``region``): the first ultrasound region of 2D tissue, else the first one.

    ``RegionLocationMinX0``/``MinY0``/``MaxX1``/``MaxY1`` include their last pixel; the box excludes it.
    """
    located = [
        r
        for r in getattr(ds, "SequenceOfUltrasoundRegions", None) or []
        if all(hasattr(r, f"RegionLocation{k}") for k in ("MinX0", "MinY0", "MaxX1", "MaxY1"))
    ]
    tissue = [r for r in located if getattr(r, "RegionSpatialFormat", None) == 1]  # 1: 2D (tissue or flow)
    if not located:
        return None
    r = (tissue or located)[0]
    x0, y0, x1, y1 = (int(getattr(r, f"RegionLocation{k}")) for k in ("MinX0", "MinY0", "MaxX1", "MaxY1"))
    return (x0, y0, x1 + 1, y1 + 1) if x1 >= x0 and y1 >= y0 else None


def dicom_references(path: Path) -> dict[str, str]:
    """The UIDs that identify the DICOM instance at ``path``: study, series, SOP instance and, when it has one,
    frame of reference (``{"study_instance_uid": ..., ...}``), for outputs to name their source by."""
    import pydicom

    header = pydicom.dcmread(path, stop_before_pixels=True)
    return {key: str(header[keyword].value) for key, keyword in _REFERENCE_UIDS.items() if keyword in header}
