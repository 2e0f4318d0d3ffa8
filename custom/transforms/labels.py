"""Dictionary transforms that bring any image / mask / record into the form the network trains on.

MONAI loads PNG and JPEG with any number of channels (grayscale, RGB, RGBA, grey+alpha); these
transforms normalise channels, binarise masks and derive the image-level class, so the rest of the
pipeline sees one layout whatever the source.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from custom.errors import InputError


def _describe(data: Mapping, key: Hashable = "image") -> str:
    """The file a sample came from, for error messages."""
    value = data.get(key)
    meta = getattr(value, "meta", None) or {}
    return str(meta.get("filename_or_obj", data.get("id", "<unnamed sample>")))


class NormalizeChannelsd(MapTransform):
    """Gives channel-first images exactly ``channels`` channels (1 or 3).

    Alpha channels (grey+alpha, RGBA) are dropped; grayscale is repeated to three channels;
    colour is averaged to one channel. BUSI ships both 8-bit grayscale and RGB files of the same
    kind of picture, so this keeps the network input identical for both.
    """

    def __init__(self, keys: KeysCollection, channels: int = 3, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if channels not in (1, 3):
            raise InputError(f"--in_channels {channels}: the images are read as 1 (grayscale) or 3 channels.")
        self.channels = channels

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            n = img.shape[0]
            if n in (2, 4):  # grey+alpha or RGBA: the alpha channel carries no anatomy
                img = img[: n - 1]
            elif n not in (1, 3):
                raise ValueError(f"{_describe(d, key)}: expected 1-4 channels, got {n}.")
            if img.shape[0] != self.channels:
                img = img.repeat(3, *[1] * (img.ndim - 1)) if self.channels == 3 else img.mean(0, keepdim=True)
            d[key] = img
        return d


class BinarizeMaskd(MapTransform):
    """Turns a mask of any encoding (0/1, 0/255, colours, anti-aliased grey edges) into one float channel of 0/1.

    Any non-zero value in any colour channel is lesion, as the BUSI and BUS-UCLM masks define it;
    an alpha channel (the last of 2 or 4) only marks transparent pixels as background. Expects
    channel-first input (after ``EnsureChannelFirstd``).
    """

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            mask = d[key]
            if mask.shape[0] in (2, 4):  # grey+alpha or RGBA: a transparent pixel is background whatever its colour
                lesion = (mask[:-1] != 0).any(dim=0, keepdim=True) & (mask[-1:] != 0)
            else:
                lesion = (mask != 0).any(dim=0, keepdim=True)
            d[key] = lesion.to(torch.float32)
        return d


class ClassLabeld(MapTransform):
    """Puts the image-level class target into ``output_key``.

    ``num_classes = 2``: lesion (1) vs normal (0), read from the record's ``lesion`` field or, when
    the record has none (a MONAI Label datastore gives only image and mask), derived from the mask:
    any foreground pixel means lesion. ``num_classes = 3``: the record's ``class`` field
    (0 normal, 1 benign, 2 malignant), which cannot be derived from a mask.

    Args:
        keys: the binarised mask key (used to derive the binary label).
        num_classes: 2 or 3.
        output_key: where the integer class goes.
    """

    def __init__(self, keys: KeysCollection, num_classes: int = 2, output_key: str = "cls") -> None:
        super().__init__(keys)
        if num_classes not in (2, 3):
            raise ValueError(
                f"num_classes must be 2 (normal/lesion) or 3 (normal/benign/malignant), got {num_classes}."
            )
        self.num_classes = num_classes
        self.output_key = output_key

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        mask_key = self.keys[0]
        if self.num_classes == 3:
            if "class" not in d:
                raise KeyError(
                    f"{_describe(d)}: the record has no 'class' field; 3-class training needs "
                    "normal/benign/malignant labels (prepare the data with scripts/prepare_data.py)."
                )
            label = int(d["class"])
        elif "lesion" in d:
            label = int(d["lesion"])
        else:
            label = int(bool(d[mask_key].any()))
        if not 0 <= label < self.num_classes:
            raise ValueError(f"{_describe(d)}: class {label} is outside 0..{self.num_classes - 1}.")
        d[self.output_key] = torch.tensor(label, dtype=torch.long)
        return d


def class_names(num_classes: int) -> Sequence[str]:
    """Names of the class indices used throughout the project (index 0 is always normal)."""
    return ("normal", "lesion") if num_classes == 2 else ("normal", "benign", "malignant")
