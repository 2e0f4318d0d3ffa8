"""Lesion measurements from a predicted mask: what a radiologist reads off the image, in pixels and millimetres.

For the lesion (the largest connected component of the mask, 8-connected) the report gives its area,
its bounding box, its **longest diameter** and the **diameter perpendicular** to it, the two calliper
measurements of breast-ultrasound reporting (the BI-RADS lexicon measures a mass in two perpendicular
planes, the longest first). Diameters are measured between the midpoints of the lesion pixels' outer
edges (centre plus or minus half a pixel along each axis), so a one-pixel lesion is 1 pixel long and
wide and a 10x1 streak 10 long and 1 wide; the perpendicular diameter is the lesion's extent across
the longest one. With a pixel
spacing (millimetres per pixel, from DICOM or NIfTI headers) each length also comes in millimetres;
PNG and JPEG carry no spacing, and the millimetre fields are then ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from skimage.measure import label

__all__ = ["measure_lesion"]


def measure_lesion(mask: np.ndarray, spacing: Sequence[float] | None = None) -> dict[str, Any]:
    """Measurements of the largest lesion in a 2D ``mask`` (rows, columns; non-zero is lesion).

    Args:
        mask: the predicted mask, ``(H, W)``.
        spacing: millimetres per pixel along rows and columns, or None when unknown.

    Returns:
        ``components`` (number of separate lesion regions), and for the largest one ``area_px``,
        ``bbox`` (``[x_min, y_min, x_max, y_max]``, inclusive pixel indices), ``longest_diameter_px``,
        ``perpendicular_diameter_px`` and, with ``spacing``, ``area_mm2``, ``longest_diameter_mm``,
        ``perpendicular_diameter_mm``. An empty mask gives ``components`` 0 and no lesion fields.
    """
    mask = np.asarray(mask) != 0
    if mask.ndim != 2:
        raise ValueError(f"measure_lesion expects a 2D mask, got shape {mask.shape}")
    labels, count = label(mask, connectivity=2, return_num=True)
    result: dict[str, Any] = {"components": int(count)}
    if count == 0:
        return result
    lesion = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    area = int(lesion.sum())
    # the convex hull, so both diameters, only depends on the first and last pixel of each row
    rows = np.flatnonzero(lesion.any(axis=1))
    first = lesion[rows].argmax(axis=1)
    last = lesion.shape[1] - 1 - lesion[rows, ::-1].argmax(axis=1)
    rows, cols = np.concatenate([rows, rows]), np.concatenate([first, last])
    scale = np.array([1.0, 1.0]) if spacing is None else np.asarray(spacing, dtype=float)[:2]
    longest, perpendicular = _diameters(rows, cols, scale)
    result.update(area_px=area, bbox=[int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())])
    if spacing is None:
        result.update(
            longest_diameter_px=longest,
            perpendicular_diameter_px=perpendicular,
            area_mm2=None,
            longest_diameter_mm=None,
            perpendicular_diameter_mm=None,
        )
    else:
        px_longest, px_perpendicular = _diameters(rows, cols, np.array([1.0, 1.0]))
        result.update(
            longest_diameter_px=px_longest,
            perpendicular_diameter_px=px_perpendicular,
            area_mm2=float(area * scale[0] * scale[1]),
            longest_diameter_mm=longest,
            perpendicular_diameter_mm=perpendicular,
        )
    return result


def _diameters(rows: np.ndarray, cols: np.ndarray, scale: np.ndarray) -> tuple[float, float]:
    """Longest distance between two edge midpoints, and the extent across that direction (scaled lengths)."""
    steps = ((-0.5, 0.0), (0.5, 0.0), (0.0, -0.5), (0.0, 0.5))
    points = np.concatenate([np.stack([rows + dr, cols + dc], axis=1) for dr, dc in steps]) * scale
    points = np.unique(points, axis=0)
    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError:  # too few points for a hull (one pixel): all of them are on it
        hull = points
    gaps = hull[:, None, :] - hull[None, :, :]
    distances = np.hypot(gaps[..., 0], gaps[..., 1])
    i, j = np.unravel_index(np.argmax(distances), distances.shape)
    direction = gaps[i, j] / distances[i, j]
    across = hull @ np.array([-direction[1], direction[0]])
    return float(distances[i, j]), float(across.max() - across.min())
