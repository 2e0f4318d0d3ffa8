"""Uncertainty and comparison statistics for the cross-validation report.

- :func:`bootstrap_ci`: percentile bootstrap over images (Efron & Tibshirani, 1993).
- :func:`paired_comparison`: two models on the same test images: paired bootstrap CI of the mean
  difference and the two-sided Wilcoxon signed-rank test, the test Aumente-Maestro et al. use to compare methods.
- :func:`aggregate_folds`: mean and sample standard deviation over folds of every numeric metric.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.stats import wilcoxon


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.nanmean,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(values)``.

    Resamples ``values`` with replacement ``n_resamples`` times (NumPy ``default_rng(seed)``, so the
    interval is deterministic for a seed) and returns the ``(1 - level) / 2`` and ``(1 + level) / 2``
    percentiles of the resampled statistics. NaN values are kept in the resamples and left to
    ``statistic`` (``np.nanmean`` ignores them); resamples whose statistic is NaN are ignored.
    ``(nan, nan)`` when there is no value.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, arr.size, size=(n_resamples, arr.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples
        stats = np.array([statistic(arr[i]) for i in idx], dtype=np.float64)
        tail = (1.0 - level) / 2.0 * 100.0
        lo, hi = np.nanpercentile(stats, [tail, 100.0 - tail])
    return float(lo), float(hi)


def paired_comparison(
    a: Mapping[str, float], b: Mapping[str, float], n_resamples: int = 2000, seed: int = 0
) -> dict[str, float | int | list[float]]:
    """Compare two per-image scores (e.g. Dice of model A and model B) on the images they share.

    Uses the ids present in both mappings whose two values are finite. Returns ``n``, ``mean_a``,
    ``mean_b``, ``mean_diff`` (``b - a``), ``ci95`` (paired percentile bootstrap of the mean
    difference: images are resampled, keeping each image's pair together) and ``wilcoxon_p``
    (``scipy.stats.wilcoxon`` two-sided on the differences, zero differences dropped; NaN when
    fewer than two images or every difference is zero).
    """
    ids = sorted(k for k in a.keys() & b.keys() if math.isfinite(a[k]) and math.isfinite(b[k]))
    va = np.array([a[k] for k in ids], dtype=np.float64)
    vb = np.array([b[k] for k in ids], dtype=np.float64)
    diff = vb - va
    p = math.nan
    if len(ids) >= 2 and np.any(diff != 0):
        p = float(wilcoxon(diff, alternative="two-sided").pvalue)
    mean = (lambda v: float(np.mean(v))) if ids else (lambda v: math.nan)
    return {
        "n": len(ids),
        "mean_a": mean(va),
        "mean_b": mean(vb),
        "mean_diff": mean(diff),
        "ci95": list(bootstrap_ci(diff, np.mean, n_resamples=n_resamples, seed=seed)),
        "wilcoxon_p": p,
    }


def aggregate_folds(fold_summaries: Sequence[dict]) -> dict:
    """Mean and standard deviation over folds of every numeric leaf of the fold summaries.

    Returns ``{"n_folds", "mean", "std", "confusion_matrix"}``. ``mean`` and ``std`` keep the nested
    structure of the summaries (the union of their keys; a leaf is aggregated over the folds that
    have it). ``std`` is the sample standard deviation (``ddof=1``) with two or more values, 0 with
    one. NaN propagates: a metric undefined in one fold (e.g. AUC of a single-class fold) is NaN.
    Lists (confidence intervals, confusion matrices) and strings are not averaged; instead the
    ``classification.confusion_matrix`` of the folds are summed into ``confusion_matrix``: with
    disjoint test folds this is the confusion matrix of all out-of-fold predictions.
    """
    matrices = [s["classification"]["confusion_matrix"] for s in fold_summaries if "classification" in s]
    mean, std = _aggregate(fold_summaries)
    return {
        "n_folds": len(fold_summaries),
        "mean": mean,
        "std": std,
        "confusion_matrix": np.sum(matrices, axis=0).tolist() if matrices else None,
    }


def _aggregate(nodes: Sequence[dict]) -> tuple[dict, dict]:
    mean: dict = {}
    std: dict = {}
    keys = list(dict.fromkeys(k for node in nodes for k in node))
    for key in keys:
        values = [node[key] for node in nodes if key in node]
        if all(isinstance(v, dict) for v in values):
            sub_mean, sub_std = _aggregate(values)
            if sub_mean:  # a dict of lists only (the confidence intervals) leaves nothing to aggregate
                mean[key], std[key] = sub_mean, sub_std
        elif all(_is_number(v) for v in values):
            arr = np.asarray(values, dtype=np.float64)
            mean[key] = float(np.mean(arr))
            std[key] = float(np.std(arr, ddof=1)) if arr.size > 1 else 0.0
    return mean, std


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
