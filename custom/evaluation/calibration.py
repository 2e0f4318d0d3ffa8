"""Calibration on validation data: a temperature for the probabilities, the lesion/normal operating point, and measures.

N-Unet decides by the argmax of its classification head. A model trained on class-balanced batches
(``bundle/configs/recipe_cpu_budget.json``) learns a 50 % prior while BUSI has 83 % lesion images,
so its argmax calls too many images normal, and through the hard CSB gate empties their masks. The
threshold is therefore chosen per fold on the fold's validation split (never on its test split),
stored in the model card beside the checkpoint (:mod:`custom.checkpoints.card`) and applied by
evaluation and inference (:func:`custom.networks.csb.predicted_class`).

The operating point serves the hard CSB gate, which empties the mask of every image called normal:
a missed lesion loses its mask too. By default it is therefore chosen for sensitivity, the highest
threshold that keeps a stated share (0.95) of the validation lesion images; the highest accuracy
stays available (``operating_point="accuracy"``).

The probabilities themselves are over-confident (ECE 0.228 on the fold-0 test split before this):
temperature scaling (Guo et al., 2017) divides the classification logits by one temperature fitted
on the same validation split, which changes the probabilities but not their order, so the threshold
is chosen on the calibrated probabilities, the ones evaluation and inference then report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from custom.errors import InputError

__all__ = [
    "OPERATING_POINTS",
    "brier_score",
    "calibrated_lesion_probability",
    "choose_lesion_threshold",
    "expected_calibration_error",
    "fit_temperature",
]

OPERATING_POINTS = ("sensitivity", "accuracy")

logger = logging.getLogger("nunet")


def check_operating_point(operating_point: str, target_sensitivity: float) -> None:
    """Refuses an unknown ``operating_point`` or a ``target_sensitivity`` outside (0, 1] in one line."""
    if operating_point not in OPERATING_POINTS:
        raise InputError(f"--operating_point {operating_point!r}: expected one of {', '.join(OPERATING_POINTS)}.")
    if not 0 < target_sensitivity <= 1:
        raise InputError(f"--target_sensitivity {target_sensitivity!r}: expected a share in (0, 1].")


def choose_lesion_threshold(
    lesion_true: Sequence[int],
    lesion_prob: Sequence[float],
    operating_point: str = "sensitivity",
    target_sensitivity: float = 0.95,
) -> dict[str, float]:
    """The threshold on the lesion probability for ``operating_point``, with what it achieves on the given images.

    - ``"sensitivity"``: the highest threshold whose sensitivity (share of lesion images at or above
      it) is at least ``target_sensitivity``;
    - ``"accuracy"``: the highest accuracy; among equals, the threshold nearest 0.5.

    Candidates are 0.5 and the midpoints between consecutive distinct probabilities, so the choice
    does not sit on one image's score. Returns the threshold with its accuracy, sensitivity and
    specificity, the accuracy at 0.5 and the rule. A classifier that gives every image the same
    probability (a collapsed head) cannot be thresholded: 0.5 is kept, with a warning and ``constant: True``.
    """
    check_operating_point(operating_point, target_sensitivity)
    y = np.asarray(lesion_true, dtype=int)
    p = np.asarray(lesion_prob, dtype=float)
    if y.size == 0 or y.size != p.size:
        raise ValueError(f"need as many labels as probabilities (got {y.size} and {p.size}), at least one.")
    distinct = np.unique(p)
    constant = distinct.size == 1
    if constant:
        logger.warning(
            "every one of the %d validation images has the lesion probability %.4f: the classifier is constant "
            "(its head has collapsed), so no threshold separates the classes; 0.5 is kept.",
            y.size,
            distinct[0],
        )
    candidates = np.unique(np.concatenate([[0.5], (distinct[:-1] + distinct[1:]) / 2]))
    accuracy = np.array([np.mean((p >= t) == y) for t in candidates])
    sensitivity = np.array([np.mean(p[y == 1] >= t) if np.any(y == 1) else np.nan for t in candidates])
    specificity = np.array([np.mean(p[y == 0] < t) if np.any(y == 0) else np.nan for t in candidates])
    if constant:
        chosen = int(np.flatnonzero(candidates == 0.5)[0])
        rule = "none: a constant classifier"
    elif operating_point == "sensitivity":
        # without lesion images every threshold keeps them all: the highest candidate
        meets = np.flatnonzero(~(sensitivity < target_sensitivity))
        chosen = int(meets[-1])
        rule = f"highest threshold with validation sensitivity >= {target_sensitivity}"
    else:
        best = np.flatnonzero(accuracy == accuracy.max())
        chosen = int(best[np.argmin(np.abs(candidates[best] - 0.5))])
        rule = "highest accuracy on the validation split, ties nearest 0.5"
    choice = {
        "threshold": float(candidates[chosen]),
        "operating_point": operating_point,
        "accuracy": float(accuracy[chosen]),
        "sensitivity": float(sensitivity[chosen]),
        "specificity": float(specificity[chosen]),
        "accuracy_at_0.5": float(np.mean((p >= 0.5) == y)),
        "images": int(y.size),
        "constant": bool(constant),
        "rule": rule,
    }
    if operating_point == "sensitivity":
        choice["target_sensitivity"] = float(target_sensitivity)
    return choice


def calibrated_lesion_probability(class_prob: np.ndarray, temperature: float) -> np.ndarray:
    """``1 - p(normal)`` after dividing the logits by ``temperature``, from ``(N, C)`` class probabilities.

    The log of a softmax is the logits less one constant per image, which the softmax cancels: the
    probabilities a run records give the calibrated ones exactly, without the network.
    """
    log_p = np.log(np.clip(np.asarray(class_prob, dtype=float), 1e-12, 1.0)) / temperature
    log_p -= log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return 1.0 - p[:, 0] / p.sum(axis=1)


def fit_temperature(lesion_true: Sequence[int], class_prob: np.ndarray) -> dict[str, float]:
    """The temperature that minimises the negative log-likelihood of the lesion/normal truth, with ECE and Brier before/after.

    ``class_prob``: ``(N, C)`` class probabilities at temperature 1 (class 0 normal). Searched over
    0.05..20 (log scale). A constant classifier, or validation data of one class only, has no
    temperature to learn: 1 is kept.
    """
    y = np.asarray(lesion_true, dtype=float)
    probs = np.asarray(class_prob, dtype=float)

    def nll(log_t: float) -> float:
        p = np.clip(calibrated_lesion_probability(probs, float(np.exp(log_t))), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    before = calibrated_lesion_probability(probs, 1.0)
    fittable = 0 < y.sum() < y.size and np.ptp(before) > 0
    temperature = float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x)) if fittable else 1.0
    after = calibrated_lesion_probability(probs, temperature)
    return {
        "temperature": temperature,
        "images": int(y.size),
        "nll_before": nll(0.0),
        "nll_after": nll(float(np.log(temperature))),
        "ece_before": expected_calibration_error(y, before),
        "ece_after": expected_calibration_error(y, after),
        "brier_before": brier_score(y, before),
        "brier_after": brier_score(y, after),
        "rule": "temperature scaling of the classification logits, lowest lesion/normal NLL on the validation split",
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
