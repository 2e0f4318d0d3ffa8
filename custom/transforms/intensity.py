"""Intensity augmentation for images from other scanners: multiplicative speckle-like noise.

Gamma, contrast and blur come from MONAI (``RandAdjustContrastd``, ``RandScaleIntensityFixedMeand``,
``RandGaussianSmoothd``); MONAI has no multiplicative noise, the kind ultrasound speckle is.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

__all__ = ["RandSpeckleNoised"]


class RandSpeckleNoised(RandomizableTransform, MapTransform):
    """Multiplies the image by ``1 + std * n``, ``n`` standard normal per pixel, the same over all channels.

    Fully developed speckle is multiplicative (the envelope of the echo is Rayleigh distributed, its
    log-compressed image noise proportional to the signal); scanners differ in its grain and strength,
    so a model trained on one scanner's speckle learns to read through others'. The noise is shared by
    the channels so that a grey image replicated into three channels stays grey. Values are clipped to
    the input's range afterwards.

    Args:
        keys: the image keys.
        prob: probability of applying the noise to a sample.
        std: the noise's standard deviation is drawn uniformly from ``(0, std)`` (a number) or ``std`` (a pair).
    """

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.2,
        std: float | Sequence[float] = 0.15,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        low, high = (0.0, float(std)) if isinstance(std, (int, float)) else map(float, std)
        if not 0.0 <= low <= high:
            raise ValueError(f"RandSpeckleNoised: std range ({low}, {high}) must be non-negative and increasing.")
        self.std_range = (low, high)
        self._std = 0.0

    def randomize(self, data: object = None) -> None:
        super().randomize(None)
        self._std = self.R.uniform(*self.std_range)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            image = d[key]
            shape = (1, *image.shape[1:])
            noise = torch.as_tensor(self.R.standard_normal(shape), dtype=image.dtype, device=image.device)
            noisy = image * (1.0 + self._std * noise)
            d[key] = noisy.clamp(float(image.min()), float(image.max()))
        return d
