"""The picture a reviewer looks at: the input with the outline of the predicted mask and the decision written on it.

A reviewer going through a batch opens ``<stem>_overlay.png`` beside ``<stem>_seg.png``: the mask alone
says nothing about where it lies in the image, and the JSON's numbers nothing about what they describe.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from monai.transforms import MapTransform
from monai.utils import ImageMetaKey
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from custom.fileio import atomic_file
from custom.imageio import OUTPUT_STEM, output_stem
from custom.keys import DecisionKeys
from custom.transforms.load import FRAME_KEY, LoadPictured

__all__ = ["SaveOverlayd", "overlay_picture"]

OUTLINE = (255, 40, 40)  # red: seen on grey ultrasound, and by most colour-blind readers against grey


def overlay_picture(grey: np.ndarray, mask: np.ndarray, caption: str) -> Image.Image:
    """``grey`` ``(H, W)`` as RGB with the outline of ``mask`` ``(H, W)`` in red and ``caption`` in its top-left corner.

    The outline and the text grow with the picture (a two-hundredth and a twenty-fifth of its shorter
    side), so both stay legible on a 856x606 frame as on a 96x96 one.
    """
    height, width = grey.shape
    mask = mask.astype(bool)
    thickness = max(1, round(min(height, width) / 200))
    outline = mask & ~ndimage.binary_erosion(mask, iterations=thickness, border_value=0)
    rgb = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    rgb[outline] = OUTLINE
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(10, min(height, width) // 25))
    left, top, right, bottom = draw.textbbox((4, 4), caption, font=font)
    draw.rectangle([left - 3, top - 3, right + 3, bottom + 3], fill=(0, 0, 0))
    draw.text((4, 4), caption, fill=(255, 255, 255), font=font)
    return picture


def caption_of(result: Mapping) -> str:
    """``"lesion, p(lesion) 0.83"``: the class decision and the (calibrated) lesion probability of a result."""
    text = str(result.get("predicted_class", "mask"))
    if "lesion_probability" in result:
        text += f", p(lesion) {float(result['lesion_probability']):.2f}"
    return text


class SaveOverlayd(MapTransform):
    """Writes ``<output_dir>/<stem>_overlay.png``: the input image at its full size, the mask's outline, the decision.

    The image is read again from its file (the frame of a multi-frame file) by the loader of the
    pipeline, so the overlay shows the picture the user gave, not the network's cropped and resized
    input. The stem is the one of ``<stem>_seg.png`` and ``<stem>.json`` (:func:`custom.imageio.output_stem`).

    Args:
        output_dir: the folder of the outputs.
        key: the ``(1, W, H)`` 0/1 mask at the input's size (after ``Invertd``).
        image_key: the loaded image, whose metadata names the input file.
        result_key: the JSON summary of :class:`custom.transforms.MultiTaskDecisiond`.
    """

    def __init__(
        self, output_dir: str, key: str = DecisionKeys.SEG_PRED, image_key: str = "image", result_key: str = "result"
    ) -> None:
        super().__init__(keys=[key], allow_missing_keys=True)
        self.output_dir = Path(output_dir)
        self.image_key, self.result_key = image_key, result_key
        self.loader = LoadPictured("image")

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        meta = d[self.image_key].meta
        source = str(meta[ImageMetaKey.FILENAME_OR_OBJ])
        frame = meta.get(FRAME_KEY)
        frame = None if frame is None else int(frame)
        record = {"image": source, **({FRAME_KEY: frame} if frame is not None else {})}
        grey = self.loader(record)["image"][0].numpy().T  # (H, W), as the picture is shown
        key = next(iter(self.key_iterator(d)), None)
        mask = np.zeros(grey.shape, bool) if key is None else torch.as_tensor(d[key]).detach().cpu().numpy()[0].T > 0
        picture = overlay_picture(grey, mask, caption_of(d.get(self.result_key, {})))
        stem = d.get(OUTPUT_STEM) or output_stem(source, frame)  # unique within the run, as the mask's
        with atomic_file(self.output_dir / f"{stem}_overlay.png") as f:
            picture.save(f, format="PNG")
        return d
