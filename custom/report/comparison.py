"""Paired comparison of two runs on the test images they share (``custom.evaluation.paired_comparison``)."""

from __future__ import annotations

from custom.evaluation import paired_comparison

from .document import Table
from .runs import Run, is_number
from .tables import fmt

#: per-image scores compared: Dice and IoU on lesion images (N-Unet), and whether the lesion decision is right
PAIRED_METRICS = {
    "dice": lambda r: r.get("dice") if r.get("lesion") == 1 and is_number(r.get("dice")) else None,
    "iou": lambda r: r.get("iou") if r.get("lesion") == 1 and is_number(r.get("iou")) else None,
    # only for networks that decide (a segmentation-only network has no lesion_pred column)
    "lesion decision correct": lambda r: float(r["lesion_pred"] == r["lesion"]) if "lesion_pred" in r else None,
}


def per_image_scores(run: Run, metric: str) -> dict[str, float]:
    """``{image id: score}`` of ``metric`` over the run's test images where it is defined."""
    score = PAIRED_METRICS[metric]
    return {str(r["id"]): float(v) for r in run.per_image if (v := score(r)) is not None}


def comparison_table(a: Run, b: Run) -> Table:
    """Paired differences ``b - a`` per metric with their bootstrap CI and Wilcoxon p-value."""
    rows = []
    for metric in PAIRED_METRICS:
        c = paired_comparison(per_image_scores(a, metric), per_image_scores(b, metric))
        p = c["wilcoxon_p"]
        rows.append(
            [
                metric,
                str(c["n"]),
                fmt(c["mean_a"]),
                fmt(c["mean_b"]),
                fmt(c["mean_diff"]),
                f"[{fmt(c['ci95'][0])}, {fmt(c['ci95'][1])}]",
                f"{p:.4g}" if is_number(p) else "n/a",
            ]
        )
    note = (
        "Convention: the same test images in both runs (ids common to both per_image.csv); Dice and IoU over "
        "lesion images after CSB (N-Unet), decision correctness over all images (1 right, 0 wrong); "
        "difference = B - A with a paired percentile bootstrap 95 % CI (2000 resamples) and the two-sided "
        "Wilcoxon signed-rank p-value (n/a when every difference is zero)."
    )
    header = ["metric", "n", f"A: {a.name}", f"B: {b.name}", "B - A", "95 % CI", "Wilcoxon p"]
    return Table(f"Paired comparison: {b.name} vs {a.name}", header, rows, note)
