"""Pictures (PNG, JPEG, BMP, TIFF of any mode) in and PNGs out, and the one decoder of the project.

:func:`decode` makes every picture the 8-bit grayscale the network reads, in preparation, training and
inference alike; :func:`decode_pixels` does the same for an array of samples (a frame of a medical file,
see :mod:`custom.imageio.registry`, or a colour picture wider than 8 bits), so a colour NRRD, DICOM or
PNG, and a 16-bit one, become grey by the same rules. Every reading problem is a
:class:`~custom.errors.DataError` whose message starts with the file. PNGs are written atomically
(:func:`custom.fileio.atomic_file`), so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps

from custom.errors import DataError
from custom.fileio import atomic_file
from custom.imageio.base import check_file
from custom.imageio.itk_formats import read_colour

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# Speed over size for the prepared images: level 1 writes BUSI's noisy ultrasound 4-5x faster than
# the default level 6 for files about 14 % larger, which keeps preparing BUSI well under a minute.
IMAGE_PNG_LEVEL = 1


def open_image(path: Path) -> Image.Image:
    """The decoded image at ``path``; :class:`DataError` naming the file when it is missing, empty or unreadable."""
    check_file(path)
    try:
        with Image.open(path) as img:
            check_single_page(img)  # while open: counting a TIFF's pages reads the file
            img.load()
            return img
    except DataError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ... for bad files
        raise DataError(f"{path}: not a readable image ({e})") from e


def decode(img: Image.Image) -> Image.Image:
    """The 8-bit grayscale picture ``img`` shows: the one decoder of preparation, training and inference.

    - EXIF orientation is applied, so the pixels are those a viewer (and an annotator) saw.
    - Colour of any mode (RGB, CMYK, YCbCr, palette, with or without alpha) becomes ITU-R 601-2 luma;
      alpha is dropped (it carries no anatomy). BUSI's RGB files have three equal channels, for which
      luma is exact.
    - Integer data wider than 8 bits (16-bit containers holding 10, 12 or 14-bit scanner data, 32-bit
      integers, and 16-bit colour or grey-and-alpha samples, which PIL alone would cut to their high
      byte: those are read at full depth by ITK) is scaled by its real bit depth, the smallest even
      number of bits that holds the image's maximum, not by the container's: a 12-bit image in a 16-bit
      PNG keeps its contrast instead of collapsing into the 16 darkest grey levels.
    - Floating-point data in [0, 1] is scaled by 255; other floating-point data by its own range.
    - 1-bit images become 0/255.

    Raises :class:`DataError`, naming the file when ``img`` was read from one, for an image with
    non-finite pixels or of a mode that is no picture.
    """
    source = getattr(img, "filename", "") or "image"
    check_single_page(img)
    channels = wide_colour_channels(img)
    if channels > 1:
        return upright(Image.fromarray(decode_pixels(read_wide_colour(img, channels), source)), img)
    img = ImageOps.exif_transpose(img)
    if img.mode in ("L", "1", "P", "PA", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        if img.mode in ("P", "PA"):
            img = expand_palette(img)
        if img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("RGB")
        return img.convert("L")
    pixels = np.asarray(img)
    if pixels.ndim != 2 or pixels.size == 0:
        raise DataError(
            f"{source}: an image of mode {img.mode} and shape {pixels.shape} is not a picture this package reads"
        )
    try:
        return Image.fromarray(_to_uint8(pixels))
    except DataError as e:
        raise DataError(f"{source}: {e}") from None


def decode_pixels(pixels: np.ndarray, source: str = "image") -> np.ndarray:
    """A frame of a medical file or a wide colour picture (``(H, W)``, or ``(H, W, C)``: grey and alpha, colour,
    colour and alpha) as the ``(H, W)`` uint8 picture :func:`decode` makes.

    Colour becomes ITU-R 601-2 luma (8-bit colour exactly as PIL converts it), alpha is dropped, and wider
    data is scaled as in :func:`decode`: integer colour by the bit depth of its largest sample over all
    channels (luma is a weighted mean, so scaling before or after it is the same), never by its high byte.
    :class:`DataError` naming ``source`` for non-finite pixels or an unusable shape.
    """
    if pixels.ndim == 3 and pixels.shape[-1] == 2:  # grey and alpha
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        rgb = pixels[..., :3]
        if rgb.dtype == np.uint8:
            return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))
        luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        try:
            return _to_uint8(luma, rgb)
        except DataError as e:
            raise DataError(f"{source}: {e}") from None
    if pixels.ndim != 2 or pixels.size == 0:
        raise DataError(f"{source}: a frame of shape {pixels.shape} is not a picture this package reads")
    try:
        return _to_uint8(pixels)
    except DataError as e:
        raise DataError(f"{source}: {e}") from None


def _to_uint8(pixels: np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
    """Wide integer pixels scaled by their bit depth, floating-point pixels by 255 or their own range, as uint8.

    ``samples``: the stored samples ``pixels`` were computed from (the colour channels of a luma), whose
    type and largest value set the bit depth; ``pixels`` themselves by default.
    """
    samples = pixels if samples is None else samples
    values = pixels.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError("the image has non-finite (NaN or infinite) pixels")
    low, high = float(values.min()), float(values.max())
    if samples.size and np.issubdtype(samples.dtype, np.integer) and int(samples.min()) >= 0:
        bits = max(8, int(np.ceil(np.log2(float(samples.max()) + 1))))
        return np.round(values * (255.0 / (2 ** (bits + bits % 2) - 1))).astype(np.uint8)
    if low >= 0 and high <= 1:
        return np.round(values * 255).astype(np.uint8)
    span = high - low
    return np.round((values - low) * (255.0 / span if span else 0.0)).astype(np.uint8)


# colour modes whose samples PIL narrows to 8 bits on loading: a 16-bit RGB or grey+alpha PNG, a 16-bit RGB TIFF
_WIDE_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "LA")
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def wide_colour_channels(img: Image.Image) -> int:
    """How many channels ``img``'s file stores with more than 8 bits per sample (PIL keeps only their high byte),
    or 0 (grey, or 8-bit samples).

    The decoder's raw mode says so (``RGB;16B``, ``LA;16B``, ``RGBA;16L``; PIL shows a 16-bit grey+alpha PNG
    as RGBA); PIL forgets it once the pixels are loaded, so a loaded image's header is read again from its file.
    """
    if img.mode not in _WIDE_COLOUR_MODES:
        return 0
    tile = img.tile
    if not tile and getattr(img, "filename", ""):
        try:
            with Image.open(img.filename) as header:
                tile = header.tile
        except OSError:
            return 0
    for t in tile:
        rawmode = t.args if isinstance(t.args, str) else (t.args[0] if t.args else "")
        if isinstance(rawmode, str) and (";16" in rawmode or ";32" in rawmode):
            return len(rawmode.split(";")[0])
    return 0


def upright(picture: Image.Image, stored: Image.Image) -> Image.Image:
    """``picture`` (made from the samples of ``stored``) turned by ``stored``'s EXIF orientation."""
    method = _EXIF_TRANSPOSE.get(_orientation(stored))
    return picture if method is None else picture.transpose(method)


def read_wide_colour(img: Image.Image, channels: int) -> np.ndarray:
    """The ``(H, W, C)`` samples of ``img``'s file, a PNG or TIFF of ``channels`` wide colour channels
    (:func:`wide_colour_channels`), at their full depth: ITK reads them all, as it reads a colour NRRD."""
    source = getattr(img, "filename", "") or "image"
    try:
        return read_colour(Path(source))
    except Exception as e:  # ITK raises RuntimeError, TemplateTypeError, ... for what it cannot read
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{source}: {channels}-channel samples wider than 8 bits could not be read ({reason})") from e


def to_gray(img: Image.Image) -> np.ndarray:
    """8-bit single-channel pixels of ``img`` as :func:`decode` sees them, an ``(H, W)`` uint8 array."""
    return np.asarray(decode(img), dtype=np.uint8)


def check_single_page(img: Image.Image) -> None:
    """Raises :class:`DataError` for a multi-page TIFF or an animated GIF or PNG, of which only the first page
    would be read without a word. (A phone's MPO JPEG also has several frames: its first is the photo.)"""
    try:
        pages = getattr(img, "n_frames", 1)
    except ValueError:  # closed: it came from open_image, which counted its pages while the file was open
        return
    if pages > 1 and img.format in ("TIFF", "GIF", "PNG"):
        source = getattr(img, "filename", "") or "image"
        raise DataError(f"{source}: a {img.format} of {pages} pages; save each image as a file of its own")


def expand_palette(img: Image.Image) -> Image.Image:
    """``img`` with a palette replaced by the colours it shows (RGB, or RGBA when it has transparency).

    MONAI's ``PILReader`` returns a palette image's index numbers, not its colours, so a palette PNG
    would reach the network as indices. Other modes are returned unchanged.
    """
    if img.mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "PA":
        return img.convert("RGBA")
    return img


# EXIF orientations 5-8 turn the picture by 90 degrees: its displayed width is the stored height.
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def _orientation(img: Image.Image) -> int:
    return int(img.getexif().get(ExifTags.Base.Orientation, 1) or 1)


def picture_size(path: Path) -> tuple[int, int]:
    """Displayed ``(width, height)`` of the picture at ``path`` (EXIF orientation applied) from its header."""
    check_file(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            return (height, width) if _orientation(img) in _TRANSPOSING_ORIENTATIONS else (width, height)
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, ... for bad files
        raise DataError(f"{path}: not a readable image ({e})") from e


def has_orientation_tag(path: Path) -> bool:
    """Whether the picture at ``path`` carries an EXIF orientation other than "as stored"."""
    with Image.open(path) as img:
        return _orientation(img) != 1


def write_png(path: Path, pixels: np.ndarray, compress_level: int = 6) -> None:
    """Writes ``pixels`` (``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` uint8; bool for a 1-bit PNG) as a PNG, atomically."""
    with atomic_file(path) as f:
        Image.fromarray(pixels).save(f, format="PNG", compress_level=compress_level)


def png_bytes(pixels: np.ndarray, dpi: tuple[float, float] | None = None) -> bytes:
    """``pixels`` encoded as PNG in memory; ``dpi`` (x, y), when given, is stored as its physical pixel size."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **({"dpi": dpi} if dpi else {}))
    return buffer.getvalue()
