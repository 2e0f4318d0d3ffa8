"""The one definition of every metric the project reports (N-Unet paper, section 4.5).

Built on MONAI's metric functions so that validation handlers (MONAI ``MeanDice``/``MeanIoU``/
``ROCAUC``/``ConfusionMatrix``), ``evaluate.json`` and later reports compute the same numbers.

Conventions (N-Unet): classification treats *lesion present* (benign or malignant) as the
positive class; segmentation metrics are computed per image on the CSB-gated binary mask and
averaged over the images whose ground truth contains a lesion.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_confusion_matrix_metric,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
    compute_roc_auc,
    get_confusion_matrix,
)

from .calibration import brier_score, expected_calibration_error

BOUNDARY_METRICS = ("hd95", "asd")
SEGMENTATION_METRICS = ("dice", "iou", "pixel_accuracy", "sensitivity", "precision", *BOUNDARY_METRICS)
# the boundary metrics again in millimetres, for images whose record gives a pixel spacing
MILLIMETRE_METRICS = tuple(f"{m}_mm" for m in BOUNDARY_METRICS)
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "ece", "brier")


def segmentation_metrics(
    pred: torch.Tensor, gt: torch.Tensor, spacing: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """Per-image segmentation metrics of binary masks ``(B, 1, H, W)``; each value has shape ``(B,)``.

    Overlap metrics and the boundary metrics of :func:`boundary_metrics` in pixels; with ``spacing``
    (millimetres per pixel along height and width, the same for the batch) the boundary metrics
    once more in millimetres under ``hd95_mm`` and ``asd_mm``.

    Images with an empty ground truth get NaN for every metric except pixel accuracy, so that
    averaging with ``nanmean`` follows the paper's lesion-images-only convention. On a lesion
    image with an empty prediction (a missed lesion, or a mask zeroed by CSB) pixel precision is
    0/0; we score it 0, like its Dice, rather than dropping the image from the average.
    """
    pred, gt = pred.float(), gt.float()
    cm = get_confusion_matrix(pred, gt, include_background=True)  # (B, 1, 4): tp, fp, tn, fn
    has_lesion = gt.flatten(1).sum(1) > 0
    nan = torch.full_like(has_lesion, float("nan"), dtype=torch.float32)
    precision = torch.nan_to_num(compute_confusion_matrix_metric("precision", cm)[:, 0], nan=0.0)
    return {
        "dice": compute_dice(pred, gt, include_background=True, ignore_empty=True)[:, 0],
        "iou": compute_iou(pred, gt, include_background=True, ignore_empty=True)[:, 0],
        "pixel_accuracy": compute_confusion_matrix_metric("accuracy", cm)[:, 0],
        "sensitivity": torch.where(has_lesion, compute_confusion_matrix_metric("sensitivity", cm)[:, 0], nan),
        "precision": torch.where(has_lesion, precision, nan),
        **boundary_metrics(pred, gt),
        **({f"{k}_mm": v for k, v in boundary_metrics(pred, gt, spacing).items()} if spacing is not None else {}),
    }


def boundary_metrics(
    pred: torch.Tensor, gt: torch.Tensor, spacing: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """95th-percentile Hausdorff distance and average symmetric surface distance per image, ``(B,)``.

    Computed with MONAI's ``compute_hausdorff_distance`` (``percentile=95``, symmetric) and
    ``compute_average_surface_distance`` (``symmetric=True``) on the mask edges, in pixels or, with
    ``spacing`` (per axis), in its unit. ACSNet and Aumente-Maestro et al. report HD95 this way.

    Conventions where a mask is empty (MONAI returns NaN or infinity there): an empty ground truth
    gives NaN, so that the lesion-images-only average of the N-Unet convention skips the image; a
    lesion image with an empty prediction (missed, or zeroed by CSB) scores the image's diagonal,
    the largest distance the image allows, so that a miss is penalised instead of dropped.
    """
    pred, gt = pred.float(), gt.float()
    n = pred.shape[0]
    scale = torch.ones(pred.ndim - 2) if spacing is None else torch.as_tensor(spacing, dtype=torch.float32)
    diagonal = float(torch.linalg.vector_norm(torch.as_tensor(pred.shape[2:], dtype=torch.float32) * scale))
    out = {name: torch.full((n,), float("nan")) for name in BOUNDARY_METRICS}
    has_gt, has_pred = gt.flatten(1).sum(1) > 0, pred.flatten(1).sum(1) > 0
    both = has_gt & has_pred
    if both.any():
        kwargs = {"include_background": True, "spacing": None if spacing is None else list(spacing)}
        with warnings.catch_warnings():
            # MONAI 1.5-1.6 warn about an argument of get_mask_edges that their own metrics leave at its default
            warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
            out["hd95"][both] = compute_hausdorff_distance(pred[both], gt[both], percentile=95, **kwargs)[:, 0].float()
            out["asd"][both] = compute_average_surface_distance(pred[both], gt[both], symmetric=True, **kwargs)[
                :, 0
            ].float()
    for name in BOUNDARY_METRICS:
        out[name][has_gt & ~has_pred] = diagonal
    return out


def classification_metrics(
    lesion_true: Sequence[int], lesion_pred: Sequence[int], lesion_prob: Sequence[float]
) -> dict[str, float]:
    """Lesion-vs-normal accuracy, precision, recall, F1 (lesion positive), and of ``lesion_prob`` the ROC-AUC and the
    calibration: expected calibration error (10 bins) and Brier score (:mod:`custom.evaluation.calibration`)."""
    y = torch.as_tensor(np.asarray(lesion_true), dtype=torch.float32).reshape(-1, 1)
    y_hat = torch.as_tensor(np.asarray(lesion_pred), dtype=torch.float32).reshape(-1, 1)
    # one channel (lesion); MONAI returns one confusion matrix per sample: pool them
    cm = get_confusion_matrix(y_hat, y, include_background=True).sum(0, keepdim=True)
    metrics = {
        name: float(compute_confusion_matrix_metric(monai_name, cm)[0, 0])
        for name, monai_name in (
            ("accuracy", "accuracy"),
            ("precision", "precision"),
            ("recall", "sensitivity"),
            ("f1", "f1 score"),
        )
    }
    both_classes = 0 < float(y.sum()) < len(y)
    prob = torch.as_tensor(np.asarray(lesion_prob), dtype=torch.float32)
    metrics["auc"] = float(compute_roc_auc(prob, y[:, 0])) if both_classes else float("nan")
    metrics["ece"] = expected_calibration_error(lesion_true, lesion_prob)
    metrics["brier"] = brier_score(lesion_true, lesion_prob)
    return metrics


def nanmean(values: Sequence[float]) -> float:
    """Mean over the defined values (NaN when none is): the lesion-images-only average."""
    arr = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")
