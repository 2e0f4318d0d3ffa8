"""Lesion area at 256x256 and size tiers (N-Unet paper, section 4.1; custom/data/sizes.py)."""

from __future__ import annotations

import numpy as np
import pytest

from custom.data.sizes import lesion_area, size_thresholds, size_tier


def test_lesion_area_counts_pixels_at_256_nearest():
    mask = np.zeros((128, 64), dtype=bool)
    mask[:32, :16] = True  # a quarter of each side: 64 x 64 pixels at 256x256
    assert lesion_area(mask) == 64 * 64
    assert lesion_area(np.zeros((500, 300), dtype=bool)) == 0


def test_thresholds_are_the_33_and_66_percent_quantiles():
    alpha, beta = size_thresholds(list(range(101)))
    assert alpha == pytest.approx(33) and beta == pytest.approx(66)
    with pytest.raises(ValueError):
        size_thresholds([])


def test_tiers_and_their_boundaries():
    assert size_tier(0, 0, 10, 20) == "none"
    assert size_tier(9, 1, 10, 20) == "small"
    assert size_tier(10, 1, 10, 20) == "medium"
    assert size_tier(19, 1, 10, 20) == "medium"
    assert size_tier(20, 1, 10, 20) == "large"
