"""Gaussian-derivative gradient magnitude as an extra input channel (MTL-OCA, section 3.2)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type, convert_to_numpy
from scipy.ndimage import gaussian_gradient_magnitude


class GradientMagnituded(MapTransform):
    """Appends to a one-channel image the magnitude of its Gaussian derivative, ``m = sqrt(g_x^2 + g_y^2)`` (eq. 6-9).

    ``g_x``, ``g_y`` are the image filtered with the derivatives of a Gaussian of standard deviation
    ``sigma`` (in pixels), computed by ``scipy.ndimage.gaussian_gradient_magnitude`` (along every
    spatial axis, so 3D images get the 3D magnitude). The paper does not say how the magnitude is
    scaled; it is divided by its maximum so that the channel lies in [0, 1], flat regions stay 0 and
    the strongest edge of every image is 1 (a constant image gives an all-zero channel). Borders are
    handled by scipy's default reflection, which creates no edge at the image frame.

    Numpy arrays stay numpy; tensors keep their type, device and metadata (a ``MetaTensor`` keeps
    its ``meta``). The output is float32 with channels ``[image, magnitude]``.

    Args:
        keys: keys of channel-first, single-channel images.
        sigma: standard deviation of the Gaussian, in pixels (the paper does not give it).
        allow_missing_keys: don't raise for missing keys.

    Raises:
        ValueError: for an image that has not exactly one channel.
    """

    def __init__(self, keys: KeysCollection, sigma: float = 1.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}.")
        self.sigma = sigma

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if img.shape[0] != 1:
                raise ValueError(f"{key!r}: GradientMagnituded expects one channel, got shape {tuple(img.shape)}.")
            image = convert_to_numpy(img, dtype=np.float32)
            magnitude = gaussian_gradient_magnitude(image[0], self.sigma)
            peak = magnitude.max()
            if peak > 0:
                magnitude /= peak
            d[key] = convert_to_dst_type(np.concatenate([image, magnitude[None]]), img, dtype=np.float32)[0]
        return d
