"""Which reader a file gets: its format by its name, else by its content, and the reading of any image through it.

As nnU-Net's reader-writer registry: pictures (PNG, JPEG, BMP, TIFF) are read by PIL
(:mod:`custom.imageio.pictures`); the medical families by their codec (:data:`CODECS`: DICOM, NIfTI,
NRRD, MetaImage). A file whose name has no image extension (PACS exports name files by number or
UID) is recognised by its content (:mod:`custom.imageio.detect`). Each file becomes a list of
:class:`~custom.imageio.base.Frame` s (a multi-frame DICOM gives one per image, a volume one per slice),
which :func:`~custom.imageio.pictures.decode_pixels` makes 8-bit grey by the rules of every picture.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from custom.errors import DataError
from custom.fileio import atomic_path
from custom.imageio.base import Frame, MedicalCodec, check_file
from custom.imageio.detect import sniff_format
from custom.imageio.dicom import DICOM
from custom.imageio.itk_formats import METAIMAGE, NRRD
from custom.imageio.nifti import NIFTI
from custom.imageio.pictures import PICTURE_SUFFIXES, decode_pixels, open_image, picture_size, to_gray

CODECS: tuple[MedicalCodec, ...] = (DICOM, NIFTI, NRRD, METAIMAGE)
_CODEC_OF_SUFFIX = {suffix: codec for codec in CODECS for suffix in codec.suffixes}
MEDICAL_SUFFIXES = tuple(_CODEC_OF_SUFFIX)
IMAGE_SUFFIXES = PICTURE_SUFFIXES + MEDICAL_SUFFIXES


def is_image_name(name: str) -> bool:
    """Whether ``name`` has one of the image suffixes this package reads (any case)."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is an image this package reads: by its name, or by its content when the name has no
    image extension (:func:`medical_format`)."""
    return is_image_name(path.name) or medical_format(path) is not None


def medical_suffix(name: str) -> str | None:
    """The medical-format suffix ``name`` ends with (any case), or None."""
    lower = name.lower()
    return next((s for s in MEDICAL_SUFFIXES if lower.endswith(s)), None)


def medical_format(path: str | os.PathLike) -> str | None:
    """The medical-format suffix the file at ``path`` is read as: its name's, else its content's, else None.

    The content is looked at only for a name without an image extension: a PACS export's ``IM000001``
    or ``1.2.840.113619...`` is read as what it holds, while ``scan.png`` is never opened here.
    """
    name = os.fspath(path)
    suffix = medical_suffix(name)
    if suffix or name.lower().endswith(PICTURE_SUFFIXES) or not os.path.isfile(name):
        return suffix
    return sniff_format(Path(name))


def codec_for(path: str | os.PathLike) -> MedicalCodec | None:
    """The codec that reads the file at ``path`` (:func:`medical_format`), or None for a picture."""
    return _CODEC_OF_SUFFIX.get(medical_format(path) or "")


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
    codec = codec_for(path)
    if codec is None:
        raise DataError(f"{path}: not a medical image format this package reads ({', '.join(MEDICAL_SUFFIXES)})")
    try:
        return codec.read_frames(path)
    except DataError:
        raise
    except Exception as e:  # pydicom, nibabel and ITK raise their own errors (and RuntimeError, OSError) for bad files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable {codec.name} image ({reason})") from e


def frame_count(path: Path) -> int:
    """How many frames :func:`read_frames` gives for ``path``, from the header where the format allows."""
    codec = codec_for(path)
    count = None if codec is None else codec.count_frames(path)
    return len(read_frames(path)) if count is None else count


def mask_suffix(source: str | os.PathLike) -> str | None:
    """The suffix of the mask written for input ``source`` in its own family, or None (DICOM, pictures: PNG)."""
    codec, suffix = codec_for(source), medical_format(source)
    return None if codec is None else codec.mask_suffixes.get(suffix)


def write_mask_like(source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
    """Writes ``mask`` (``(H, W)`` uint8) to ``path`` with the geometry of frame ``frame`` of ``source``.

    NIfTI: the input's affine and header, one slice (the frame's, its origin moved along the third
    axis); NRRD and MetaImage: the input's spacing, origin and direction. Written atomically
    (:func:`custom.fileio.atomic_path`: into a folder created if needed, then renamed).
    """
    codec, suffix = codec_for(source), mask_suffix(source)
    if codec is None or suffix is None:
        raise ValueError(f"{source}: masks are written in the input's format for NIfTI, NRRD and MetaImage only")
    with atomic_path(path, suffix=suffix) as tmp:
        codec.write_mask_like(source, frame, mask, tmp)


def read_gray(path: Path, frame: int = 0) -> np.ndarray:
    """Frame ``frame`` of the image at ``path`` as an ``(H, W)`` uint8 array (see :func:`~custom.imageio.decode`,
    :func:`~custom.imageio.decode_pixels`)."""
    if medical_format(path):
        check_file(path)
        return decode_pixels(read_frames(path)[frame].pixels, str(path))
    return to_gray(open_image(path))


def image_size(path: Path) -> tuple[int, int]:
    """Displayed ``(width, height)`` of the image at ``path`` (EXIF orientation applied) from its header."""
    if medical_format(path):
        check_file(path)
        height, width = read_frames(path)[0].pixels.shape[:2]
        return width, height
    return picture_size(path)
