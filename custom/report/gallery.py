"""Overlays of image, ground-truth contour and predicted contour for the cases the report shows.

Cases are picked from the evaluation's ``per_image.csv`` only to display them: best, median and worst
Dice among lesion images, and the paper's four failure modes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .figures import save_figure  # noqa: E402
from .inference import FoldModel, display_image  # noqa: E402
from .runs import Run, is_number, lesion_rows  # noqa: E402

Row = dict[str, Any]

#: failure modes of the paper's error analysis, each a predicate on a per-image row
FAILURE_MODES: dict[str, Callable[[Row], bool]] = {
    "false-positive class": lambda r: r.get("lesion") == 0 and r.get("lesion_pred") == 1,
    "false-negative class": lambda r: r.get("lesion") == 1 and r.get("lesion_pred") == 0,
    "IoU = 0": lambda r: r.get("lesion") == 1 and is_number(r.get("iou")) and r["iou"] == 0,
    "IoU < 0.3": lambda r: r.get("lesion") == 1 and is_number(r.get("iou")) and 0 < r["iou"] < 0.3,
}


def select_cases(rows: list[Row], per_mode: int = 2) -> list[tuple[str, Row]]:
    """``(category, row)`` pairs: best / median / worst Dice of lesion images, then up to ``per_mode`` of each failure mode."""
    chosen: list[tuple[str, Row]] = []
    ranked = sorted(lesion_rows(rows), key=lambda r: (-r["dice"], str(r["id"])))
    if ranked:
        chosen += [("best Dice", ranked[0]), ("median Dice", ranked[len(ranked) // 2]), ("worst Dice", ranked[-1])]
    for mode, matches in FAILURE_MODES.items():
        # id order: a stable pick that does not depend on any score
        chosen += [(mode, r) for r in sorted(filter(matches, rows), key=lambda r: str(r["id"]))[:per_mode]]
    return chosen


def plot_gallery(run: Run, path: Path, models: dict[int, FoldModel]) -> int:
    """Draws the selected cases of ``run`` into one figure; returns the number of panels (0 writes nothing)."""
    cases = select_cases(run.per_image)
    if not cases:
        return 0
    cols = 4
    n_rows = -(-len(cases) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.2 * cols, 4.1 * n_rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (category, row) in zip(axes.flat, cases):
        case = models_for(run, row["fold"], models).predict(str(row["id"]))
        img = display_image(case.image)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        draw_contour(ax, case.label, "lime")
        draw_contour(ax, case.mask, "red")
        dice = f"Dice {row['dice']:.3f}" if is_number(row.get("dice")) else "Dice n/a"
        ax.set_title(
            f"{category}\n{row['id']} (fold {row['fold']}) {dice}\ntrue {truth_name(row)}, pred {_pred(row)}",
            fontsize=8,
        )
    fig.suptitle(f"Cases of {run.name}: ground truth (green) and CSB-gated prediction (red)", fontsize=11)
    save_figure(fig, path)
    plt.close(fig)
    return len(cases)


def draw_contour(ax: plt.Axes, mask: np.ndarray, color: str) -> None:
    """Outline of a binary (H, W) mask; padded with background so a mask touching the border is closed there."""
    if not mask.any():
        return
    rows, cols = np.arange(-1, mask.shape[0] + 1), np.arange(-1, mask.shape[1] + 1)
    ax.contour(cols, rows, np.pad(mask.astype(float), 1), levels=[0.5], colors=color, linewidths=1.2)


def models_for(run: Run, fold: int, models: dict[int, FoldModel]) -> FoldModel:
    """The fold's model from ``models``, loaded once and kept there for the other figures."""
    if fold not in models:
        models[fold] = FoldModel(run, fold)
    return models[fold]


def truth_name(row: Row) -> str:
    """The ground-truth class name of a row (``lesion`` / ``normal`` when the CSV has no ``class_name``)."""
    return str(row.get("class_name") or ("lesion" if row.get("lesion") == 1 else "normal"))


def _pred(row: Row) -> str:
    return "lesion" if row.get("lesion_pred") == 1 else "normal"
