"""Reading NIfTI-1 and NIfTI-2 (nibabel), and writing a mask with the geometry of a NIfTI input.

The first two axes are the picture's columns and rows (x and y, as MONAI lays out 2D images) and the
third, when there is one, counts the frames. Spacing from the header's voxel sizes; a NIfTI without
qform and sform states none. An RGB NIfTI (RGB24, RGBA32) is colour like an RGB PNG.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from custom.imageio.base import Frame, MedicalCodec, stack_frames

NIFTI_SUFFIXES = (".nii", ".nii.gz")

# NIfTI's spatial units and their size in millimetres; "unknown" counts as millimetres when the header
# states a real orientation (the NIfTI default), see _nifti_spacing
_NIFTI_UNIT_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}


class NiftiCodec(MedicalCodec):
    """NIfTI images and stacks (see the module's docstring); masks are written as ``.nii.gz``."""

    def read_frames(self, path: Path) -> list[Frame]:
        """One frame per slice of the third axis, with the header's spacing."""
        image = _load_nifti(path)
        volume = np.asarray(image.dataobj)
        while volume.ndim > 3 and volume.shape[-1] == 1:
            volume = volume[..., 0]
        colour = volume.dtype.names is not None  # RGB24 / RGBA32: one record of 8-bit samples per voxel
        if colour:
            volume = np.stack([volume[name] for name in volume.dtype.names], axis=-1)
        return [Frame(s, _nifti_spacing(image)) for s in stack_frames(volume, path, channels=colour)]

    def write_mask_like(self, source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
        """The input's affine and header, one slice (the frame's, its origin moved along the third axis)."""
        import nibabel

        image = _load_nifti(source)
        data = mask.T  # (x, y), as the input stores it
        if len(image.shape) > 2:
            data = data[:, :, None]
        affine = image.affine.copy()
        affine[:3, 3] += affine[:3, 2] * frame  # the frame's slice of a stack
        header = image.header.copy()
        header.set_data_dtype(np.uint8)
        header.set_data_shape(data.shape)
        nibabel.save(nibabel.Nifti1Image(data.astype(np.uint8), affine, header), str(path))


NIFTI = NiftiCodec("NIfTI", NIFTI_SUFFIXES, {".nii": ".nii.gz", ".nii.gz": ".nii.gz"})


def _load_nifti(path: Path) -> Any:
    """The NIfTI image at ``path``; one without its extension is parsed from its bytes (nibabel goes by the name)."""
    import nibabel

    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return nibabel.load(str(path))
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    nifti = nibabel.Nifti2Image if data[4:8] == b"n+2\0" else nibabel.Nifti1Image
    return nifti.from_bytes(data)


def _nifti_spacing(image: Any) -> tuple[float, float] | None:
    """Millimetres per pixel (rows, columns), or None when the header states no real geometry.

    A NIfTI with neither a qform nor an sform (both codes 0, "method 1" of the standard) has voxel sizes
    that mean nothing, usually the 1.0 every writer fills in: millimetres measured with them would be
    invented, so such a file has no spacing, like a PNG.
    """
    header = image.header
    if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0:
        return None
    zooms = header.get_zooms()
    if len(zooms) < 2 or min(zooms[:2]) <= 0:
        return None
    unit = _NIFTI_UNIT_MM.get(header.get_xyzt_units()[0], 1.0)
    return (float(zooms[1]) * unit, float(zooms[0]) * unit)
