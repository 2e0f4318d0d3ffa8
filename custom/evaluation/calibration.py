"""The lesion/normal decision threshold chosen on validation data, and how calibrated the probabilities are.

N-Unet decides by the argmax of its classification head. A model trained on class-balanced batches
(``bundle/configs/recipes/cpu_budget.json``) learns a 50 % prior while BUSI has 83 % lesion images,
so its argmax calls too many images normal, and through the hard CSB gate empties their masks. The
threshold is therefore chosen per fold on the fold's validation split (never on its test split),
stored in the model card beside the checkpoint (:mod:`custom.deploy.release`) and applied by
evaluation and inference (:func:`custom.networks.csb.predicted_class`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

__all__ = ["brier_score", "choose_lesion_threshold", "expected_calibration_error"]

logger = logging.getLogger(__name__)


def choose_lesion_threshold(lesion_true: Sequence[int], lesion_prob: Sequence[float]) -> dict[str, float]:
    """The threshold on the lesion probability with the highest accuracy; among equals, the one nearest 0.5.

    Candidates are 0.5 and the midpoints between consecutive distinct probabilities, so the choice
    does not sit on one image's score. Returns the threshold, its accuracy and the accuracy at 0.5
    on the given (validation) images. A classifier that gives every image the same probability (a
    collapsed head) cannot be thresholded: 0.5 is kept, with a warning and ``constant: True``.
    """
    y = np.asarray(lesion_true, dtype=int)
    p = np.asarray(lesion_prob, dtype=float)
    if y.size == 0 or y.size != p.size:
        raise ValueError(f"need as many labels as probabilities (got {y.size} and {p.size}), at least one.")
    distinct = np.unique(p)
    if distinct.size == 1:
        logger.warning(
            "every one of the %d validation images has the lesion probability %.4f: the classifier is constant "
            "(its head has collapsed), so no threshold separates the classes; 0.5 is kept.",
            y.size,
            distinct[0],
        )
    candidates = np.unique(np.concatenate([[0.5], (distinct[:-1] + distinct[1:]) / 2]))
    accuracy = np.array([np.mean((p >= t) == y) for t in candidates])
    best = np.flatnonzero(accuracy == accuracy.max())
    chosen = best[np.argmin(np.abs(candidates[best] - 0.5))]
    return {
        "threshold": float(candidates[chosen]),
        "accuracy": float(accuracy[chosen]),
        "accuracy_at_0.5": float(np.mean((p >= 0.5) == y)),
        "images": int(y.size),
        "constant": bool(distinct.size == 1),
        "rule": "highest accuracy on the validation split, ties nearest 0.5",
    }


def brier_score(lesion_true: Sequence[int], lesion_prob: Sequence[float]) -> float:
    """Mean squared difference between the lesion probability and the 0/1 truth."""
    y, p = np.asarray(lesion_true, dtype=float), np.asarray(lesion_prob, dtype=float)
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(lesion_true: Sequence[int], lesion_prob: Sequence[float], bins: int = 10) -> float:
    """ECE over ``bins`` equal-width probability bins: the image-weighted mean |frequency - mean probability|."""
    y, p = np.asarray(lesion_true, dtype=float), np.asarray(lesion_prob, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    gaps = [
        abs(y[which == b].mean() - p[which == b].mean()) * np.sum(which == b) for b in range(bins) if np.any(which == b)
    ]
    return float(sum(gaps) / y.size)
