"""Reading images and masks of any PNG/JPEG/BMP/TIFF mode, and writing PNGs atomically.

Every file a later stage reads is written atomically (temporary file in the same folder, then
``os.replace``, :func:`custom.fileio.atomic_file`), so a reader sees the old file or the new one,
never half of one. Every reading problem is a :class:`DataError` whose message starts with the file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from custom.data.errors import DataError
from custom.fileio import atomic_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# Speed over size for the prepared images: level 1 writes BUSI's noisy ultrasound 4-5x faster than
# the default level 6 for files about 14 % larger, which keeps preparing BUSI well under a minute.
IMAGE_PNG_LEVEL = 1


def is_image_name(name: str) -> bool:
    """Whether ``name`` has one of the image suffixes this package reads (any case)."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def is_hidden(name: str) -> bool:
    """Operating-system bookkeeping (``.DS_Store``, ``._x.png``), skipped silently when listing folders."""
    return name.startswith(".")


def open_image(path: Path) -> Image.Image:
    """The decoded image at ``path``; :class:`DataError` naming the file when it is missing, empty or unreadable."""
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: zero-byte file")
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ... for bad files
        raise DataError(f"{path}: not a readable image ({e})") from e


def to_gray(img: Image.Image) -> np.ndarray:
    """8-bit single-channel pixels of ``img``.

    Colour is converted with ITU-R 601-2 luma (exact for BUSI's RGB files with three equal channels),
    alpha is dropped, and 16-bit grayscale keeps its top 8 bits.
    """
    if img.mode.startswith("I;16"):
        return (np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def expand_palette(img: Image.Image) -> Image.Image:
    """``img`` with a palette replaced by the colours it shows (RGB, or RGBA when it has transparency).

    MONAI's ``PILReader`` returns a palette image's index numbers, not its colours, so a palette PNG
    (image or mask) would reach the network as indices; pass this as the reader's ``converter``.
    Other modes are returned unchanged.
    """
    if img.mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "PA":
        return img.convert("RGBA")
    return img


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of the image at ``path`` from its header (nothing is decoded)."""
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, ... for bad files
        raise DataError(f"{path}: not a readable image ({e})") from e


def check_mask_size(image: Path, mask: Path) -> None:
    """Raises :class:`DataError` naming ``mask`` when it does not have ``image``'s size (headers only).

    A mask of another size cannot be aligned with its image: resizing both to the network input
    would silently pair pixels that do not belong together.
    """
    image_wh, mask_wh = image_size(image), image_size(mask)
    if mask_wh != image_wh:
        raise DataError(f"{mask}: mask is {mask_wh[0]}x{mask_wh[1]} but its image is {image_wh[0]}x{image_wh[1]}")


def read_gray(path: Path) -> np.ndarray:
    """The image at ``path`` as an ``(H, W)`` uint8 array (see :func:`to_gray`)."""
    return to_gray(open_image(path))


def read_mask_rgb(path: Path) -> np.ndarray:
    """The mask at ``path`` as ``(H, W, 3)`` uint8 colours, with fully transparent pixels set to black.

    Any mode is accepted: 1-bit, grayscale, palette, RGB, RGBA (2 of BUSI's extra masks are RGBA
    with an opaque alpha channel; an alpha of 0 can only mean "no annotation here").
    """
    rgba = np.asarray(open_image(path).convert("RGBA"))
    return rgba[..., :3] * (rgba[..., 3:] > 0)


def read_mask(path: Path) -> np.ndarray:
    """The mask at ``path`` as an ``(H, W)`` bool array: any non-zero colour is lesion.

    The same rule as :class:`custom.transforms.BinarizeMaskd`, so a raw mask and its prepared 0/255
    copy mean the same lesion.
    """
    return read_mask_rgb(path).any(axis=-1)


def write_png(path: Path, pixels: np.ndarray, compress_level: int = 6) -> None:
    """Writes ``pixels`` (uint8, ``(H, W)`` or ``(H, W, 3)``) as a PNG, atomically."""
    with atomic_file(path) as f:
        Image.fromarray(pixels).save(f, format="PNG", compress_level=compress_level)


def png_bytes(pixels: np.ndarray) -> bytes:
    """``pixels`` encoded as PNG in memory."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
