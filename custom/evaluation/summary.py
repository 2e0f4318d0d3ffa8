"""Every reporting convention, computed from the rows of a fold's ``per_image.csv`` alone.

The papers the project compares with aggregate differently, so :func:`summarize` reports each
convention under its own key (and states it in ``conventions``):

- N-Unet (section 4.5): classification is lesion present (benign or malignant) vs normal,
  lesion positive, over all images; segmentation is averaged per image over lesion images only.
- Aumente-Maestro et al. (multi-task nnU-Net/UNet++ on Curated BUSI): Dice averaged over *all* images, an image
  with empty ground truth scoring 1 when the prediction is empty and 0 otherwise; 3-class
  (normal/benign/malignant) classification.

Per-image values come from :func:`custom.evaluation.segmentation_metrics` (written by
``EvaluationWriter``); aggregate classification metrics reuse :func:`classification_metrics` and
MONAI's ``compute_roc_auc`` / ``get_confusion_matrix`` / ``compute_confusion_matrix_metric``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_confusion_matrix_metric, compute_roc_auc, get_confusion_matrix

from custom.data.sizes import size_tier

from .metrics import MILLIMETRE_METRICS, SEGMENTATION_METRICS, classification_metrics, nanmean
from .statistics import bootstrap_ci

TEXT_COLUMNS = ("id", "image", "dataset", "class_name", "size_tier")
SIZE_TIERS = ("small", "medium", "large")
CONVENTIONS = {
    "classification": "N-Unet: lesion (benign or malignant) = positive, all images; "
    "confusion_matrix [[TN, FP], [FN, TP]]; auc of lesion_prob",
    "classification_3class": "Aumente-Maestro et al.: normal/benign/malignant from pred_class vs target over all images; "
    "macro_auc = unweighted mean of one-vs-rest ROC-AUCs of prob_<class>; per_class precision/recall/f1 "
    "one-vs-rest (NaN when undefined, e.g. a class never predicted); benign_vs_malignant_accuracy = "
    "share of correct benign/malignant calls among images that are truly benign or malignant AND predicted "
    "benign or malignant (malignancy grading of detected lesions; missed lesions count in recall instead)",
    "segmentation": "N-Unet: per image after CSB, mean over images whose ground truth has a lesion (gt_area > 0); "
    "masks compared at each image's original size (logits resampled bilinearly from the network's input size "
    "before the threshold; the cache size when evaluated from cached.json); hd95 = 95th-percentile symmetric "
    "Hausdorff distance and asd = average symmetric surface distance between the mask edges (MONAI), in pixels "
    "of the compared masks (hd95_mm, asd_mm in millimetres for images whose record gives the pixel spacing); "
    "a lesion image with an empty prediction scores the image diagonal",
    "segmentation_all_images": "Aumente-Maestro et al.: dice_all = mean over all images, an empty ground truth scores 1 if the "
    "prediction is empty else 0; normal_false_positive_rate = share of empty-ground-truth images with any "
    "predicted foreground",
    "by_size_tier": "lesion images by size tier (small A < alpha <= medium < beta <= large); dice and iou in "
    "the N-Unet convention; tiers recomputed from lesion_area with the training split's (alpha, beta) "
    "when given, else the rows' size_tier",
    "by_class": "per class_name: n, dice/iou (N-Unet; NaN for normal), dice_all (Aumente-Maestro et al.), accuracy = "
    "share of correct lesion-vs-normal decisions",
    "gate": "where the lesion Dice (N-Unet convention) goes: dice_ungated = mean over lesion images of the Dice of "
    "the mask before the CSB gate; lost_to_gate = dice_ungated - dice (lesion images called normal have their "
    "mask emptied); lost_to_segmentation = 1 - dice_ungated; sensitivity = share of lesion images called lesion; "
    "dice_called_lesion = dice over the lesion images called lesion",
    "by_dataset": "every convention above, once per dataset of a merged set (the record's dataset)",
    "ci95": "95 % percentile bootstrap over images: dice over lesion images (N-Unet), accuracy "
    "lesion-vs-normal over all images",
}


def read_per_image(path: str) -> list[dict]:
    """The rows of a ``per_image.csv``: text columns as ``str``, numbers as ``int`` or ``float``, empty as NaN."""
    with open(path, newline="") as f:
        return [{k: v if k in TEXT_COLUMNS else _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str) -> int | float:
    if text == "":
        return math.nan
    try:
        return int(text)
    except ValueError:
        return float(text)


def summarize(
    rows: Sequence[dict], size_thresholds: tuple[float, float] | None = None, n_bootstrap: int = 2000, seed: int = 0
) -> dict:
    """All conventions (see ``CONVENTIONS``) computed from the per-image ``rows`` of one fold.

    Args:
        rows: rows as written by ``EvaluationWriter`` / read by :func:`read_per_image`.
        size_thresholds: ``(alpha, beta)`` computed on the fold's *training* split
            (:func:`custom.data.sizes.size_thresholds`); the size tiers are then recomputed from
            ``lesion_area`` so that no test information sets them. ``None``: the rows' ``size_tier``.
        n_bootstrap: bootstrap resamples of the confidence intervals.
        seed: seed of the bootstrap.
    """
    out: dict = {"n_images": len(rows)}
    columns = rows[0].keys() if rows else {}
    correct = np.array([float(r["lesion_pred"] == r["lesion"]) for r in rows]) if "lesion_pred" in columns else None
    if correct is not None:
        out["classification"] = _classification(rows)
        if "prob_benign" in columns:
            out["classification_3class"] = _classification_3class(rows)
    if "dice" in columns:
        lesion_rows = [r for r in rows if r["gt_area"] > 0]
        out["n_lesion_images"] = len(lesion_rows)
        names = [*SEGMENTATION_METRICS, *(m for m in MILLIMETRE_METRICS if m in columns)]
        out["segmentation"] = {k: nanmean([r.get(k, math.nan) for r in lesion_rows]) for k in names}
        normal_rows = [r for r in rows if not r["gt_area"] > 0]
        out["segmentation_all_images"] = {
            "dice_all": nanmean([_dice_all(r) for r in rows]),
            "normal_false_positive_rate": nanmean([float(r["pred_area"] > 0) for r in normal_rows]),
        }
        tiers = _tiers(lesion_rows, size_thresholds)
        if tiers is not None:
            out["by_size_tier"] = {
                tier: _group([r for r, t in zip(lesion_rows, tiers) if t == tier], ("dice", "iou"))
                for tier in SIZE_TIERS
            }
    if "dice_ungated" in columns and "lesion_pred" in columns:
        out["gate"] = _gate([r for r in rows if r["gt_area"] > 0])
    if "class_name" in columns:
        names = list(dict.fromkeys(r["class_name"] for r in rows))
        out["by_class"] = {name: _by_class([r for r in rows if r["class_name"] == name]) for name in names}
    out["ci95"] = {}
    if "dice" in columns:
        dice = [r["dice"] for r in rows if r["gt_area"] > 0]
        out["ci95"]["dice"] = list(bootstrap_ci(dice, n_resamples=n_bootstrap, seed=seed))
    if correct is not None:
        out["ci95"]["accuracy"] = list(bootstrap_ci(correct, n_resamples=n_bootstrap, seed=seed))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows)) if "dataset" in columns else []
    if len(datasets) > 1:
        out["by_dataset"] = {
            name: summarize([r for r in rows if r["dataset"] == name], size_thresholds, n_bootstrap, seed)
            for name in datasets
        }
        for part in out["by_dataset"].values():
            part.pop("conventions")
    out["conventions"] = {k: v for k, v in CONVENTIONS.items() if k in out}
    return out


def _classification(rows: Sequence[dict]) -> dict:
    lesion = [r["lesion"] for r in rows]
    pred = [r["lesion_pred"] for r in rows]
    metrics: dict = classification_metrics(lesion, pred, [r["lesion_prob"] for r in rows])
    tp, fp, tn, fn = _confusion(np.asarray(pred)[:, None], np.asarray(lesion)[:, None])[0].tolist()
    metrics["confusion_matrix"] = [[int(tn), int(fp)], [int(fn), int(tp)]]
    return metrics


def _confusion(pred_onehot: np.ndarray, true_onehot: np.ndarray) -> torch.Tensor:
    """MONAI confusion counts ``(C, 4)`` = tp, fp, tn, fn per class, pooled over images."""
    pred = torch.as_tensor(pred_onehot, dtype=torch.float32)
    true = torch.as_tensor(true_onehot, dtype=torch.float32)
    return get_confusion_matrix(pred, true, include_background=True).sum(0)


def _classification_3class(rows: Sequence[dict]) -> dict:
    names = [k.removeprefix("prob_") for k in rows[0] if k.startswith("prob_")]
    target = np.array([r["target"] for r in rows], dtype=int)
    pred = np.array([r["pred_class"] for r in rows], dtype=int)
    prob = torch.tensor([[r[f"prob_{n}"] for n in names] for r in rows], dtype=torch.float32)
    eye = np.eye(len(names))
    cm = _confusion(eye[pred], eye[target])[None]  # (1, C, 4)
    per_class_metric = {
        m: compute_confusion_matrix_metric(monai_name, cm)[0].tolist()
        for m, monai_name in (("precision", "precision"), ("recall", "sensitivity"), ("f1", "f1 score"))
    }
    # one-vs-rest AUC of a class needs both its positives and negatives among the images
    auc_defined = all(0 < np.sum(target == i) < len(target) for i in range(len(names)))
    lesion_classes = [names.index(n) for n in ("benign", "malignant") if n in names]
    graded = np.isin(target, lesion_classes) & np.isin(pred, lesion_classes)
    return {
        "accuracy": float(np.mean(pred == target)),
        "macro_auc": (
            float(compute_roc_auc(prob, torch.as_tensor(eye[target]), average="macro")) if auc_defined else math.nan
        ),
        "per_class": {n: {m: float(v[i]) for m, v in per_class_metric.items()} for i, n in enumerate(names)},
        "benign_vs_malignant_accuracy": float(np.mean(pred[graded] == target[graded])) if graded.any() else math.nan,
    }


def _gate(lesion_rows: Sequence[dict]) -> dict:
    called = [r for r in lesion_rows if r["lesion_pred"] == 1]
    dice = nanmean([r["dice"] for r in lesion_rows])
    ungated = nanmean([r["dice_ungated"] for r in lesion_rows])
    return {
        "n": len(lesion_rows),
        "dice": dice,
        "dice_ungated": ungated,
        "lost_to_gate": ungated - dice,
        "lost_to_segmentation": 1.0 - ungated,
        "sensitivity": len(called) / len(lesion_rows) if lesion_rows else math.nan,
        "dice_called_lesion": nanmean([r["dice"] for r in called]),
    }


def _dice_all(row: dict) -> float:
    """Aumente-Maestro et al.: the image's Dice; with empty ground truth 1 for an empty prediction, 0 otherwise."""
    if row["gt_area"] > 0:
        return row["dice"]
    return 1.0 if row["pred_area"] == 0 else 0.0


def _tiers(lesion_rows: Sequence[dict], thresholds: tuple[float, float] | None) -> list[str] | None:
    if thresholds is not None:
        alpha, beta = thresholds
        return [size_tier(r["lesion_area"], 1, alpha, beta) for r in lesion_rows]
    if lesion_rows and "size_tier" in lesion_rows[0]:
        return [r["size_tier"] for r in lesion_rows]
    return None


def _group(rows: Sequence[dict], keys: Sequence[str]) -> dict:
    return {"n": len(rows), **{k: nanmean([r[k] for r in rows]) for k in keys}}


def _by_class(rows: Sequence[dict]) -> dict:
    group: dict = {"n": len(rows)}
    if "dice" in rows[0]:
        group.update(_group(rows, ("dice", "iou")), dice_all=nanmean([_dice_all(r) for r in rows]))
    if "lesion_pred" in rows[0]:
        group["accuracy"] = float(np.mean([r["lesion_pred"] == r["lesion"] for r in rows]))
    return group
