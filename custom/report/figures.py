"""Matplotlib figures of the runs (Agg backend, PNG): ROC, confusion matrix, Dice by size tier, training curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from custom.evaluation.calibration import brier_score, expected_calibration_error  # noqa: E402
from custom.fileio import atomic_file  # noqa: E402

from .runs import Run, is_number  # noqa: E402
from .tables import SIZE_TIERS, lookup  # noqa: E402


def roc_curve(truth: Sequence[int], score: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every threshold of ``score`` (ties stepped together)."""
    y, s = np.asarray(truth, dtype=float), np.asarray(score, dtype=float)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps, fps = np.cumsum(y)[last_of_tie], np.cumsum(1 - y)[last_of_tie]
    return np.r_[0.0, fps / max(fps[-1], 1)], np.r_[0.0, tps / max(tps[-1], 1)]


def plot_roc(run: Run, path: Path) -> None:
    """ROC of the lesion probability, one curve per fold and their vertical mean."""
    fig, ax = plt.subplots(figsize=(5, 5))
    grid, curves = np.linspace(0, 1, 101), []
    for fold in run.folds:
        rows = [r for r in run.per_image if r["fold"] == fold and is_number(r.get("lesion_prob"))]
        truth = [r["lesion"] for r in rows]
        if len(set(truth)) < 2:  # a ROC needs both classes
            continue
        fpr, tpr = roc_curve(truth, [r["lesion_prob"] for r in rows])
        auc = lookup(run.summary, "folds", str(fold), "classification", "auc")
        ax.plot(fpr, tpr, lw=1, alpha=0.6, label=f"fold {fold} (AUC {auc:.3f})" if is_number(auc) else f"fold {fold}")
        curves.append(np.interp(grid, fpr, tpr))
    if curves:
        auc = lookup(run.summary, "mean", "classification", "auc")
        label = f"mean (AUC {auc:.3f})" if is_number(auc) else "mean"
        ax.plot(grid, np.mean(curves, axis=0), color="k", lw=2, label=label)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(
        xlabel="false-positive rate",
        ylabel="true-positive rate",
        title=f"ROC, lesion vs normal: {run.name}",
        xlim=(0, 1),
        ylim=(0, 1.02),
        aspect="equal",
    )
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def plot_calibration(run: Run, path: Path, bins: int = 10) -> bool:
    """Reliability diagram of the lesion probability over the pooled test images, with Brier score and ECE.

    Each of ``bins`` equal-width probability bins is drawn at (mean predicted probability, share of
    lesion images), sized by its number of images; a calibrated model lies on the diagonal. Where the
    probabilities were calibrated (temperature scaling: ``per_image.csv`` keeps the network's own in
    ``lesion_prob_uncalibrated``), the diagram before calibration is drawn beside the one after.
    Returns False (and draws nothing) when the run has no lesion probabilities.
    """
    rows = [r for r in run.per_image if is_number(r.get("lesion_prob"))]
    if not rows:
        return False
    truth = np.array([r["lesion"] for r in rows], dtype=float)
    curves = [("after calibration" if "lesion_prob_uncalibrated" in rows[0] else "", "lesion_prob", "k")]
    if all(is_number(r.get("lesion_prob_uncalibrated")) for r in rows):
        curves.insert(0, ("before calibration", "lesion_prob_uncalibrated", "tab:orange"))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="calibrated")
    scores = []
    for name, column, colour in curves:
        prob = np.array([r[column] for r in rows], dtype=float)
        which = np.minimum((prob * bins).astype(int), bins - 1)
        filled = [b for b in range(bins) if np.any(which == b)]
        mean_prob = [prob[which == b].mean() for b in filled]
        frequency = [truth[which == b].mean() for b in filled]
        counts = np.array([np.sum(which == b) for b in filled])
        brier, ece = brier_score(truth, prob), expected_calibration_error(truth, prob, bins)
        label = f"{name + ': ' if name else ''}Brier {brier:.3f}, ECE {ece:.3f}"
        ax.plot(mean_prob, frequency, color=colour, lw=1)
        ax.scatter(mean_prob, frequency, s=20 + 200 * counts / counts.max(), color=colour, zorder=3, label=label)
        scores.append(label)
    ax.set(
        xlabel="mean lesion probability",
        ylabel="share of lesion images (bins, area: images)",
        xlim=(0, 1),
        ylim=(0, 1.02),
        aspect="equal",
        title=f"Calibration, {len(rows)} test images: {run.name}\n{'; '.join(scores)} ({bins} bins)",
    )
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)
    return True


def plot_confusion(run: Run, path: Path) -> None:
    """Confusion matrix of the class decision over the pooled test images of all folds."""
    rows = run.per_image
    prob_names = [k[len("prob_") :] for k in (rows[0] if rows else {}) if k.startswith("prob_")]
    if rows and "target" in rows[0] and len(prob_names) >= 2:
        names, pairs = prob_names, [(r["target"], r["pred_class"]) for r in rows]
    else:  # none for a segmentation-only network: an empty matrix
        names, pairs = ["normal", "lesion"], [(r["lesion"], r["lesion_pred"]) for r in rows if "lesion_pred" in r]
    cm = np.zeros((len(names), len(names)), dtype=int)
    for t, p in pairs:
        cm[int(t), int(p)] += 1
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm, cmap="Blues")
    for (i, j), n in np.ndenumerate(cm):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if n > cm.max() / 2 else "black")
    ax.set(
        xticks=range(len(names)),
        yticks=range(len(names)),
        xticklabels=names,
        yticklabels=names,
        xlabel="predicted",
        ylabel="ground truth",
        title=f"Confusion, all folds: {run.name}",
    )
    save_figure(fig, path)


def plot_size_tiers(runs: Sequence[Run], path: Path) -> None:
    """Dice by lesion-size tier, mean ± std over folds, one bar per run in each tier."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x, width = np.arange(len(SIZE_TIERS)), 0.8 / len(runs)
    for i, run in enumerate(runs):
        mean = [lookup(run.summary, "mean", "by_size_tier", t, "dice") for t in SIZE_TIERS]
        std = [lookup(run.summary, "std", "by_size_tier", t, "dice") for t in SIZE_TIERS]
        ax.bar(
            x + (i - (len(runs) - 1) / 2) * width,
            [m if is_number(m) else 0 for m in mean],
            width,
            yerr=[s if is_number(s) else 0 for s in std],
            capsize=4,
            label=run.name,
        )
    ax.set(
        xticks=x,
        xticklabels=SIZE_TIERS,
        ylabel="Dice (N-Unet)",
        ylim=(0, 1.05),
        title="Dice by lesion size (mean ± std over folds)",
    )
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_training(run: Run, path: Path) -> None:
    """Per-epoch training loss, AMTL task weights and validation metrics of every fold.

    Colour tells the quantity and line style the fold, so the legend stays short with many folds.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = (
        ("training loss", ("train_loss",)),
        ("AMTL task weights", ("weight_cls", "weight_seg")),
        ("validation", ("val_dice", "val_dice_all", "val_iou", "val_accuracy", "val_auc")),
    )
    styles = ("-", "--", ":", "-.")
    logs = {fold: run.train_log(fold) for fold in run.folds}
    for ax, (title, keys) in zip(axes, panels):
        handles = []
        for key_i, key in enumerate(keys):
            for fold_i, fold in enumerate(run.folds):
                points = [(e["epoch"], e[key]) for e in logs[fold] if is_number(e.get(key))]
                if points:
                    ep, val = zip(*points)
                    ax.plot(ep, val, marker="o", ms=3, color=f"C{key_i}", ls=styles[fold_i % len(styles)])
            handles.append(Line2D([], [], color=f"C{key_i}", label=key))
        handles += [
            Line2D([], [], color="k", ls=styles[i % len(styles)], label=f"fold {fold}")
            for i, fold in enumerate(run.folds)
        ]
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set(title=title, xlabel="epoch")
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    fig.suptitle(f"Training curves: {run.name}")
    save_figure(fig, path)


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Lays out ``fig`` and writes it to ``path`` as a PNG, atomically (a full disk leaves no half figure)."""
    fig.tight_layout()
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
