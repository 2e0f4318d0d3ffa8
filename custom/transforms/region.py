"""The ultrasound region of a picture: what the network reads of a scanner screen.

Scanners and PACS export the whole screen: the scan framed by black borders, a bar of text and
icons, colour marks. The network was trained on the scan alone (BUSI images are cropped scans), and
on a full screen it reads the frame as tissue: a lesion it finds in the scan is called normal, with
an empty mask, once the same pixels sit in a screen. :class:`CropScanRegiond` is therefore the first
of the ``input_transforms`` that training, evaluation and inference share, and crops to:

1. the region the file states: the DICOM Sequence of Ultrasound Regions (0018,6011), read by
   :mod:`custom.imageio.dicom` into the image's metadata (``ultrasound_region``);
2. otherwise the region found in the pixels (:func:`find_scan_region`): the largest connected area
   dense in speckle (textured, not dark), which text, icons and flat bars are not;
3. otherwise, when the picture is already the scan (tissue reaches its top, left and right edges, as
   in BUSI and BUS-UCLM, whose deep rows can be black), the whole picture: a crop is only made where
   the picture is framed, so tissue is never cut.

The crop is invertible (MONAI's :class:`~monai.transforms.Crop`): inference's ``Invertd`` pastes the
mask back into the uncropped frame, so masks keep the input's full size. The box is recorded in the
image's metadata (``scan_region``: ``[x0, y0, x1, y1]`` in pixel columns and rows, ends excluded, and
``scan_region_source``), which the result JSON and ``results.csv`` carry.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import Crop, InvertibleTransform, MapTransform
from scipy import ndimage

__all__ = ["CropScanRegiond", "find_scan_region", "scan_region_box"]

REGION_KEY = "ultrasound_region"  # the file's own region (DICOM), set by custom.transforms.LoadPictured
BOX_KEY = "scan_region"
SOURCE_KEY = "scan_region_source"

# speckle: a 5x5 neighbourhood brighter than DARK with a standard deviation above TEXTURE (8-bit grey levels);
# flat bars and black borders have none, text and icons too little of it to be dense
_DARK, _TEXTURE, _DENSE = 10.0, 2.0, 0.5
# a side counts as framed (not scan) when at least this share of its length is cut and the cut is flat
# (this share of its pixels), or separated from the scan by a flat gap (this share of the lines next to the box)
_FRAMED_SHARE, _FLAT_SHARE, _FLAT_GAP = 0.03, 0.9, 0.97


def _grey(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 grey levels 0..255 of a channel-first ``(C, W, H)`` image, as the loader lays it out."""
    pixels = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32)
    grey = pixels.mean(axis=0).T
    top = float(grey.max()) if grey.size else 0.0
    return grey * (255.0 / top) if 0 < top <= 1.0 else grey  # an image already scaled to 0..1


def find_scan_region(grey: np.ndarray) -> tuple[int, int, int, int]:
    """The box ``(x0, y0, x1, y1)`` (ends excluded) of the scan in an ``(H, W)`` grey picture.

    The speckle of the scan is dense; the frame around it is flat (black borders, bars) or sparse
    (text, icons, colour marks). The box bounds the largest connected area where more than half of a
    window (a twentieth of the picture's shorter side) is speckle, widened by a quarter window. It is
    only used on the sides where the picture is framed, and there fitted to the scan's edge within that
    quarter window (:func:`_fit_to_texture`; a scan pasted on black is found to the pixel): a side whose
    cut is short (under 3 % of its length), or neither flat (9 pixels in 10) nor parted from the scan
    by a flat gap (the window's width of lines next to the box, text and icons beyond it), stays at
    the picture's edge; unless
    the top, left or right side is framed the whole picture is the scan (a dark deep region at the
    bottom of a cropped scan is tissue, not frame).
    """
    height, width = grey.shape
    whole = (0, 0, width, height)
    mean = ndimage.uniform_filter(grey, 5)
    spread = np.sqrt(np.maximum(ndimage.uniform_filter(grey * grey, 5) - mean * mean, 0.0))
    speckle = (mean > _DARK) & (spread > _TEXTURE)
    window = max(5, min(height, width) // 20)
    dense = ndimage.uniform_filter(speckle.astype(np.float32), window) >= _DENSE
    labels, count = ndimage.label(dense)
    if count == 0:  # no speckle anywhere (a blank or synthetic picture): nothing to crop to
        return whole
    largest = 1 + int(np.argmax(ndimage.sum(dense, labels, range(1, count + 1))))
    ys, xs = np.nonzero(labels == largest)
    margin = window // 4
    dense_box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    # which sides are framed is decided on the dense area widened by the margin, the crop's edges are fitted
    box = [max(0, dense_box[0] - margin), max(0, dense_box[1] - margin), min(width, dense_box[2] + margin)]
    box.append(min(height, dense_box[3] + margin))
    flat = spread < 1.0
    gap = window  # the lines next to the box: the black gap between a scanner's image and its text, when it has one
    strips = {  # side: (the cut strip, its lines next to the box, its share of the picture, the picture's edge)
        0: (flat[:, : box[0]], flat[:, max(0, box[0] - gap) : box[0]], box[0] / width, 0),
        1: (flat[: box[1], :], flat[max(0, box[1] - gap) : box[1], :], box[1] / height, 0),
        2: (flat[:, box[2] :], flat[:, box[2] : box[2] + gap], (width - box[2]) / width, width),
        3: (flat[box[3] :, :], flat[box[3] : box[3] + gap, :], (height - box[3]) / height, height),
    }
    framed = {
        side
        for side, (strip, lines, share, _) in strips.items()
        if share >= _FRAMED_SHARE and (strip.mean() >= _FLAT_SHARE or lines.mean() >= _FLAT_GAP)
    }
    if not framed & {0, 1, 2}:
        return whole
    # black counts as frame when fitting: the texture filter spreads a scan's speckle 2 pixels into a black border
    fitted = _fit_to_texture(flat | (grey <= _DARK), dense_box, margin)
    return tuple(fitted[side] if side in framed else edge for side, (*_, edge) in strips.items())


def _fit_to_texture(frame: np.ndarray, box: list[int], margin: int) -> list[int]:
    """``box`` (x0, y0, x1, y1) with each side moved by up to ``margin`` lines onto the scan's edge: inwards
    over lines of frame (a share of at least ``_FLAT_SHARE`` of their pixels in the box's span flat or
    black), then outwards over lines that are not. The dense area's edge lies a little outside a scan pasted
    on black (the texture filter spreads its speckle into the border) or a little inside a scan whose edge is
    dim; a border kept in the box shrinks and shifts the scan in the network's input."""
    height, width = frame.shape
    x0, y0, x1, y1 = box

    def is_frame(side: int, at: int) -> bool:
        line = frame[y0:y1, at] if side in (0, 2) else frame[at, x0:x1]
        return bool(line.mean() >= _FLAT_SHARE)

    for _ in range(margin):  # inwards
        x0 += int(x0 < x1 - 1 and is_frame(0, x0))
        x1 -= int(x1 - 1 > x0 and is_frame(2, x1 - 1))
        y0 += int(y0 < y1 - 1 and is_frame(1, y0))
        y1 -= int(y1 - 1 > y0 and is_frame(3, y1 - 1))
    for _ in range(margin):  # outwards
        x0 -= int(x0 > 0 and not is_frame(0, x0 - 1))
        x1 += int(x1 < width and not is_frame(2, x1))
        y0 -= int(y0 > 0 and not is_frame(1, y0 - 1))
        y1 += int(y1 < height and not is_frame(3, y1))
    return [x0, y0, x1, y1]


def scan_region_box(image: torch.Tensor) -> tuple[tuple[int, int, int, int], str]:
    """The box to crop the channel-first ``(C, W, H)`` ``image`` to, and where it comes from (``dicom``/``found``/``whole``).

    A region stated in the metadata (``ultrasound_region``, from DICOM) wins, clipped to the picture; a
    stated region outside it is ignored.
    """
    width, height = int(image.shape[1]), int(image.shape[2])
    stated = getattr(image, "meta", {}).get(REGION_KEY)
    if stated is not None:
        x0, y0, x1, y1 = (int(v) for v in np.asarray(stated, dtype=float).reshape(-1)[:4])
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x1 > x0 and y1 > y0:
            return (x0, y0, x1, y1), "dicom"
    box = find_scan_region(_grey(image))
    return box, "whole" if box == (0, 0, width, height) else "found"


class CropScanRegiond(MapTransform, InvertibleTransform):
    """Crops ``keys`` to the ultrasound region of ``image_key`` (:func:`scan_region_box`); inverted by ``Invertd``.

    Every key (the image and, in training and evaluation, its mask) is cropped by the box of the
    image, so they stay aligned. The box and its source are written into the cropped image's metadata.

    Args:
        keys: the keys to crop, laid out channel first ``(C, W, H)`` as :class:`custom.transforms.LoadPictured` loads.
        image_key: the key whose pixels and metadata decide the box.
        allow_missing_keys: as for every dictionary transform (inference has no mask).
    """

    def __init__(self, keys: KeysCollection, image_key: str = "image", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.image_key = image_key
        self.cropper = Crop()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        box, source = scan_region_box(d[self.image_key])
        slices = (slice(box[0], box[2]), slice(box[1], box[3]))
        for key in self.key_iterator(d):
            d[key] = self.cropper(d[key], slices)
        meta = getattr(d[self.image_key], "meta", None)
        if meta is not None:
            meta[BOX_KEY], meta[SOURCE_KEY] = list(box), source
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.cropper.inverse(d[key])
        return d
