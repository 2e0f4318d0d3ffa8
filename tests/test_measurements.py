"""Lesion measurements of a predicted mask (custom/evaluation/measurements.py)."""

from __future__ import annotations

import numpy as np
import pytest

from custom.evaluation.measurements import measure_lesion


def test_an_empty_mask_has_no_lesion():
    assert measure_lesion(np.zeros((8, 8))) == {"components": 0}


def test_a_pixel_and_a_streak_have_their_pixel_lengths():
    mask = np.zeros((20, 30), dtype=np.uint8)
    mask[5, 5] = 1
    one = measure_lesion(mask)
    assert (one["longest_diameter_px"], one["perpendicular_diameter_px"], one["area_px"]) == (1.0, 1.0, 1)
    mask[5, 5:15] = 255
    streak = measure_lesion(mask)
    assert streak["longest_diameter_px"] == pytest.approx(10.0) and streak[
        "perpendicular_diameter_px"
    ] == pytest.approx(1.0)
    assert streak["bbox"] == [5, 5, 14, 5] and streak["area_mm2"] is None


def test_an_ellipse_measures_its_axes_in_pixels_and_millimetres_and_the_largest_component_counts():
    rows, cols = np.mgrid[:80, :120]
    mask = (rows - 40) ** 2 / 15**2 + (cols - 60) ** 2 / 40**2 <= 1  # 80 px wide, 30 px tall
    mask[0:3, 0:3] = True  # a speck: a second component, not the lesion
    measured = measure_lesion(mask, [0.1, 0.2])
    assert measured["components"] == 2
    assert measured["longest_diameter_px"] == pytest.approx(81, abs=1.5)
    assert measured["perpendicular_diameter_px"] == pytest.approx(31, abs=1.5)
    # millimetres: 80 px of 0.2 mm across, 30 px of 0.1 mm down
    assert measured["longest_diameter_mm"] == pytest.approx(81 * 0.2, abs=0.3)
    assert measured["perpendicular_diameter_mm"] == pytest.approx(31 * 0.1, abs=0.3)
    assert measured["area_mm2"] == pytest.approx(measured["area_px"] * 0.02)
    assert measured["area_px"] == pytest.approx(np.pi * 40 * 15, rel=0.02)
