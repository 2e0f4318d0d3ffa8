"""Reading lesion masks of any encoding, and checking that a mask fits its image.

A mask is read as its annotator drew it, then "any non-zero colour (of any channel) is lesion", the rule
of :class:`custom.transforms.BinarizeMaskd` too, so a raw mask and its prepared 0/255 copy mean the same
lesion: 1-bit, grey, palette, RGB and RGBA pictures (a fully transparent pixel is no annotation), 16-bit
colour at full depth, JPEG thresholded against its compression's ringing, and a medical file's frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from custom.errors import DataError
from custom.imageio.base import check_file
from custom.imageio.pictures import (
    check_single_page,
    expand_palette,
    has_orientation_tag,
    open_image,
    read_wide_colour,
    upright,
    wide_colour_channels,
)
from custom.imageio.registry import frame_count, image_size, medical_format, read_frames

# JPEG's compression rings around a mask's edges with faint non-zero values, which "any non-zero
# colour is lesion" would add to the lesion (+49 % on a 120-pixel lesion saved at quality 75)
_LOSSY_FORMATS = ("JPEG", "MPO")


def decode_mask(img: Image.Image) -> Image.Image:
    """A mask as its annotator drew it: EXIF orientation applied (as :func:`custom.imageio.decode` does for its
    image) and a palette replaced by its colours; channels and alpha are kept, for ``BinarizeMaskd`` to read.
    A JPEG mask is thresholded first (:func:`unring_lossy_mask`)."""
    check_single_page(img)
    channels = wide_colour_channels(img)
    if channels > 1:  # 16-bit colour: values below 256 would vanish with PIL's high byte
        on = mask_pixels(read_wide_colour(img, channels))
        return upright(Image.fromarray(on.astype(np.uint8) * 255), img)
    lossy = img.format in _LOSSY_FORMATS
    img = expand_palette(ImageOps.exif_transpose(img))
    return unring_lossy_mask(img) if lossy else img


def unring_lossy_mask(img: Image.Image) -> Image.Image:
    """A lossy-compressed mask as 0/255 grayscale: lesion where any channel is at least half on (128)."""
    on = np.asarray(img.convert("RGB")).max(axis=-1) >= 128
    return Image.fromarray(on.astype(np.uint8) * 255)


def read_mask_rgb(path: Path) -> np.ndarray:
    """The mask picture at ``path`` as ``(H, W, 3)`` uint8 colours (EXIF orientation applied, as for its image),
    with fully transparent pixels set to black.

    Any mode is accepted: 1-bit, grayscale, palette, RGB, RGBA (2 of BUSI's extra masks are RGBA
    with an opaque alpha channel; an alpha of 0 can only mean "no annotation here").
    """
    rgba = np.asarray(decode_mask(open_image(path)).convert("RGBA"))
    return rgba[..., :3] * (rgba[..., 3:] > 0)


def read_mask(path: Path, frame: int = 0) -> np.ndarray:
    """Frame ``frame`` of the mask at ``path`` as an ``(H, W)`` bool array: any non-zero colour is lesion."""
    if medical_format(path):
        check_file(path)
        return mask_pixels(read_frames(path)[frame].pixels)
    return read_mask_rgb(path).any(axis=-1)


def mask_pixels(pixels: np.ndarray) -> np.ndarray:
    """A mask's samples (a medical file's frame, a wide colour picture's) as an ``(H, W)`` bool array: any non-zero
    value of a grey or colour channel is lesion, except where an alpha channel (of grey and alpha, or of RGBA)
    is 0, as in a picture mask (:func:`read_mask_rgb`): an opaque alpha is no lesion of its own."""
    if pixels.ndim == 2:
        return pixels != 0
    colour, alpha = (pixels[..., :-1], pixels[..., -1]) if pixels.shape[-1] in (2, 4) else (pixels, None)
    on = colour.any(axis=-1)
    return on if alpha is None else on & (alpha > 0)


def check_mask_size(image: Path, mask: Path) -> None:
    """Raises :class:`DataError` naming ``mask`` when it does not have ``image``'s size (headers only), or when a
    mask of several frames has another number of frames than its image.

    A mask of another size cannot be aligned with its image: resizing both to the network input
    would silently pair pixels that do not belong together.
    """
    image_frames, mask_frames = (frame_count(p) if medical_format(p) else 1 for p in (image, mask))
    if mask_frames > 1 and mask_frames != image_frames:  # the frames beyond the image's were dropped without a word
        raise DataError(f"{mask}: mask has {mask_frames} frames but its image {image} has {image_frames}")
    image_wh, mask_wh = image_size(image), image_size(mask)
    if mask_wh != image_wh:
        hint = ""
        if mask_wh == image_wh[::-1] and any(not medical_format(p) and has_orientation_tag(p) for p in (image, mask)):
            hint = (
                " (sizes after EXIF orientation: one of the two files is turned by its orientation tag and the other"
                " is not)"
            )
        raise DataError(f"{mask}: mask is {mask_wh[0]}x{mask_wh[1]} but its image is {image_wh[0]}x{image_wh[1]}{hint}")
