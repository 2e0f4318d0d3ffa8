"""Paper-style tables of the runs' ``summary.json``, side by side, with the convention under each.

Every number is formatted from ``summary.json`` with :func:`fmt` (4 decimals), so the report can be
checked against the summary; a missing key prints ``n/a``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from custom.evaluation import CLASSIFICATION_METRICS, MILLIMETRE_METRICS, SEGMENTATION_METRICS

from .document import Table
from .runs import Run, is_number

ALL_IMAGES_METRICS = ("dice_all", "normal_false_positive_rate")
SIZE_TIERS = ("small", "medium", "large")


def fmt(value: Any) -> str:
    """A number with 4 decimals, ``n/a`` for anything else (missing, NaN, not a number)."""
    return f"{value:.4f}" if is_number(value) else "n/a"


def lookup(node: Any, *keys: str) -> Any:
    """``node[k1][k2]...`` or ``None`` when a level is missing."""
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def mean_std(run: Run, *keys: str) -> str:
    """``mean ± std`` over the folds of the summary value at ``keys``."""
    mean, std = lookup(run.summary, "mean", *keys), lookup(run.summary, "std", *keys)
    if mean is None:
        return "n/a"
    return f"{fmt(mean)} ± {fmt(std)}"


def _folds_note(runs: Sequence[Run]) -> str:
    folds = "; ".join(f"{run.name}: {len(run.folds)} folds" for run in runs)
    return (
        f"Mean ± standard deviation over the cross-validation folds ({folds}), each fold scored on its own test split."
    )


def convention(runs: Sequence[Run], key: str, fallback: str) -> str:
    """The convention the summary states for ``key`` (``summary.json["conventions"]``), else ``fallback``."""
    for run in runs:
        text = lookup(run.summary, "conventions", key)
        if isinstance(text, str) and text:
            return "Convention: " + text + "."
    return "Convention: " + fallback


def _metric_table(runs: Sequence[Run], caption: str, section: str, metrics: Sequence[str], fallback: str) -> Table:
    rows = [[metric] + [mean_std(run, section, metric) for run in runs] for metric in metrics]
    note = convention(runs, section, fallback) + " " + _folds_note(runs)
    return Table(caption, ["metric"] + [run.name for run in runs], rows, note)


def classification_table(runs: Sequence[Run]) -> Table:
    """The N-Unet paper's lesion-vs-normal classification (table of section 4)."""
    return _metric_table(
        runs,
        "Classification, lesion vs normal (N-Unet)",
        "classification",
        CLASSIFICATION_METRICS,
        "N-Unet: lesion present (benign or malignant) is the positive class; every test image counts; "
        "AUC, ECE (10 equal-width bins) and Brier score of the lesion probability (calibrated where the "
        "model card has a temperature).",
    )


def segmentation_table(runs: Sequence[Run]) -> Table:
    """The N-Unet paper's segmentation: lesion images only, after CSB; boundary metrics in millimetres where a run has them."""
    millimetres = [m for m in MILLIMETRE_METRICS if any(lookup(run.summary, "mean", "segmentation", m) for run in runs)]
    return _metric_table(
        runs,
        "Segmentation (N-Unet)",
        "segmentation",
        [*SEGMENTATION_METRICS, *millimetres],
        "N-Unet: metrics per image on the CSB-gated binary mask, averaged over the test images whose "
        "ground truth contains a lesion (normal images excluded); a lesion zeroed by CSB scores 0.",
    )


def all_images_table(runs: Sequence[Run]) -> Table:
    """Aumente-Maestro et al.: Dice over all images and the false-positive rate on normal images."""
    return _metric_table(
        runs,
        "Segmentation, Aumente-Maestro et al. convention",
        "segmentation_all_images",
        ALL_IMAGES_METRICS,
        "Aumente-Maestro et al.: Dice averaged over all test images, normal images included (an empty prediction on an "
        "empty ground truth scores 1); normal_false_positive_rate is the share of normal images with any predicted "
        "lesion pixel.",
    )


def three_class_table(runs: Sequence[Run]) -> Table | None:
    """Normal / benign / malignant classification, when a run has it."""
    keys = _numeric_keys(lookup(run.summary, "mean", "classification_3class") for run in runs)
    if not keys:
        return None
    return _metric_table(
        runs,
        "Classification, normal / benign / malignant",
        "classification_3class",
        keys,
        "3-class head, every test image counts, as computed by the evaluation.",
    )


def size_tier_table(runs: Sequence[Run]) -> Table:
    """Segmentation by lesion-size tier (N-Unet convention within each tier)."""
    rows = [
        [f"{tier} {metric}"] + [mean_std(run, "by_size_tier", tier, metric) for run in runs]
        for tier in SIZE_TIERS
        for metric in ("n", "dice", "iou")
    ]
    note = (
        convention(
            runs,
            "by_size_tier",
            "lesion images split by ground-truth lesion area into size tiers; Dice "
            "and IoU after CSB averaged within each tier.",
        )
        + " n: test images of the tier per fold."
    )
    return Table(
        "Segmentation by lesion size",
        ["tier / metric"] + [run.name for run in runs],
        rows,
        note + " " + _folds_note(runs),
    )


def class_table(runs: Sequence[Run]) -> Table | None:
    """Breakdown by ground-truth class (``by_class``), whatever metrics it holds."""
    classes: list[str] = []
    for run in runs:
        classes += [c for c in lookup(run.summary, "mean", "by_class") or {} if c not in classes]
    rows = []
    for name in classes:
        keys = _numeric_keys(lookup(run.summary, "mean", "by_class", name) for run in runs)
        rows += [[f"{name} {key}"] + [mean_std(run, "by_class", name, key) for run in runs] for key in keys]
    if not rows:
        return None
    note = convention(runs, "by_class", "test images grouped by their ground-truth class; segmentation after CSB.")
    return Table(
        "Breakdown by class", ["class / metric"] + [run.name for run in runs], rows, note + " " + _folds_note(runs)
    )


GATE_METRICS = ("sensitivity", "dice", "dice_ungated", "lost_to_gate", "lost_to_segmentation", "dice_called_lesion")
DATASET_METRICS = (
    ("classification", "accuracy"),
    ("classification", "auc"),
    ("classification", "recall"),
    ("segmentation", "dice"),
    ("segmentation_all_images", "dice_all"),
    ("gate", "lost_to_gate"),
)


def gate_table(runs: Sequence[Run]) -> Table | None:
    """Where the lesion Dice goes: the classification gate (CSB empties the masks of lesions called normal) or the
    segmentation itself; once over all test images and once per dataset of a merged set."""
    datasets = _datasets(runs)
    scopes = [("all", ())] + [(name, ("by_dataset", name)) for name in datasets]
    rows = [
        [f"{scope} {metric}"] + [mean_std(run, *path, "gate", metric) for run in runs]
        for scope, path in scopes
        for metric in GATE_METRICS
    ]
    if all(cell == "n/a" for row in rows for cell in row[1:]):
        return None
    note = convention(runs, "gate", "lesion Dice before and after the CSB gate.") + " " + _folds_note(runs)
    return Table(
        "Dice lost to the gate and to segmentation", ["scope / metric"] + [run.name for run in runs], rows, note
    )


def dataset_table(runs: Sequence[Run]) -> Table | None:
    """The headline figures once per dataset of a merged set (``by_dataset``), when a run has several."""
    datasets = _datasets(runs)
    if not datasets:
        return None
    rows = [
        [f"{name} {metric}"] + [mean_std(run, "by_dataset", name, section, metric) for run in runs]
        for name in datasets
        for section, metric in DATASET_METRICS
    ]
    note = convention(runs, "by_dataset", "every convention once per dataset.") + " " + _folds_note(runs)
    return Table("Per dataset", ["dataset / metric"] + [run.name for run in runs], rows, note)


def _datasets(runs: Sequence[Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        names += [n for n in lookup(run.summary, "mean", "by_dataset") or {} if n not in names]
    return names


def pooled_ci_table(runs: Sequence[Run]) -> Table:
    """Pooled test images of all folds with their 95 % bootstrap confidence intervals."""

    def cell(run: Run, section: str, metric: str) -> str:
        value = lookup(run.summary, "pooled", section, metric)
        ci = lookup(run.summary, "pooled", "ci95", metric) or [None, None]
        return f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]"

    rows = [
        ["dice (N-Unet)"] + [cell(run, "segmentation", "dice") for run in runs],
        ["accuracy"] + [cell(run, "classification", "accuracy") for run in runs],
        ["test images"] + [str(lookup(run.summary, "pooled", "n_images") or "n/a") for run in runs],
    ]
    note = (
        convention(runs, "ci95", "95 % percentile bootstrap over images.") + " Every test image of every fold "
        "pooled (each image is tested once); value [95 % CI]."
    )
    return Table("Pooled test images with 95 % bootstrap CI", ["metric"] + [run.name for run in runs], rows, note)


def fold_table(run: Run) -> Table:
    """One run's headline metrics fold by fold."""
    columns = (
        ("classification", "accuracy"),
        ("classification", "auc"),
        ("segmentation", "dice"),
        ("segmentation", "iou"),
        ("segmentation_all_images", "dice_all"),
    )
    rows = [[f"fold {k}"] + [fmt(lookup(run.summary, "folds", str(k), *c)) for c in columns] for k in run.folds]
    rows.append(["mean ± std"] + [mean_std(run, *c) for c in columns])
    return Table(
        f"Per fold: {run.name}",
        ["fold"] + [c[1] for c in columns],
        rows,
        "Conventions as in the tables above (dice, iou: N-Unet; dice_all: Aumente-Maestro et al.).",
    )


def _numeric_keys(nodes) -> list[str]:
    keys: list[str] = []
    for node in nodes:
        keys += [k for k, v in (node or {}).items() if is_number(v) and k not in keys]
    return keys
