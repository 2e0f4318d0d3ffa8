"""Per-image segmentation metrics: the boundary distances and their conventions on empty masks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from skimage.metrics import hausdorff_distance

from custom.evaluation import boundary_metrics, segmentation_metrics


def square(size: int, top: int, left: int, side: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size)
    mask[..., top : top + side, left : left + side] = 1
    return mask


def test_identical_masks_are_zero_apart():
    mask = square(48, 10, 12, 20)
    out = boundary_metrics(mask, mask)
    assert out["hd95"].item() == 0 and out["asd"].item() == 0


def test_surface_distances_warn_of_nothing():
    # MONAI's metrics call get_mask_edges with a deprecated default: once per evaluated image without the filter
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boundary_metrics(square(48, 13, 13, 20), square(48, 10, 10, 26), spacing=(0.5, 0.5))


def test_concentric_squares_are_the_margin_apart():
    inner, outer = square(48, 13, 13, 20), square(48, 10, 10, 26)  # 3-pixel margin on every side
    out = boundary_metrics(inner, outer)
    # edge to edge 3 pixels, corner to corner 3 * sqrt(2)
    assert 3 <= out["hd95"].item() <= 3 * math.sqrt(2) + 1e-6
    assert 3 <= out["asd"].item() <= 3 * math.sqrt(2) + 1e-6
    full = hausdorff_distance(inner[0, 0].numpy() > 0, outer[0, 0].numpy() > 0)  # the 100th percentile
    assert out["hd95"].item() <= full + 1e-6


def test_spacing_scales_the_distances_per_axis():
    gt, shifted = square(48, 10, 10, 20), square(48, 10, 14, 20)  # moved 4 pixels along the width only
    pixels = boundary_metrics(shifted, gt)
    assert boundary_metrics(shifted, gt, spacing=(0.5, 0.5))["hd95"].item() == pytest.approx(pixels["hd95"].item() / 2)
    # a spacing along the height does not change a shift along the width
    assert boundary_metrics(shifted, gt, spacing=(3.0, 1.0))["hd95"].item() == pytest.approx(pixels["hd95"].item())


def test_missed_lesion_scores_the_diagonal_and_a_normal_image_is_skipped():
    gt = torch.cat([square(40, 5, 5, 10), torch.zeros(1, 1, 40, 40), square(40, 5, 5, 10)])
    pred = torch.cat([torch.zeros(1, 1, 40, 40), torch.zeros(1, 1, 40, 40), square(40, 5, 5, 10)])
    out = boundary_metrics(pred, gt, spacing=(0.2, 0.1))
    diagonal = math.hypot(40 * 0.2, 40 * 0.1)
    for name in ("hd95", "asd"):
        assert out[name][0].item() == pytest.approx(diagonal)  # a lesion image with an empty prediction
        assert math.isnan(out[name][1].item())  # no lesion: not averaged, as Dice
        assert out[name][2].item() == 0


def test_segmentation_metrics_add_millimetres_only_with_spacing():
    gt, pred = square(32, 4, 4, 12), square(32, 6, 4, 12)
    assert "hd95_mm" not in segmentation_metrics(pred, gt)
    out = segmentation_metrics(pred, gt, spacing=(0.1, 0.1))
    assert np.isclose(out["hd95_mm"].item(), out["hd95"].item() * 0.1)
    assert np.isclose(out["asd_mm"].item(), out["asd"].item() * 0.1)
