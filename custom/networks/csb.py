"""Conditional Segmentation Boosting (CSB), section 3.4 of the N-Unet paper: the one definition of the gate.

The paper gates the segmentation with the image-level decision, ``S_hat = (1 - sigma) * S`` with
``sigma = 1`` for an image classified normal. In this project class 0 is always "normal" and every
other class is a lesion class (``(normal, lesion)`` or ``(normal, benign, malignant)``), so:

- ``hard``: the paper's gate. The mask probability is kept bit-identical for images whose predicted
  class is not 0 and set to zero for images predicted normal. The paper's decision is the argmax;
  with a ``lesion_threshold`` (chosen on validation data, :mod:`custom.evaluation.calibration`) an
  image is predicted normal when its lesion probability is below the threshold.
- ``soft``: the confidence-weighted gate the paper proposes as future work (section 5.6): the mask
  probability is multiplied by the lesion probability ``1 - softmax(cls)[:, 0]``.
- ``off``: no gate, the plain sigmoid of the segmentation logits.

The gate has no parameters and only runs at inference; training losses see the raw logits.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn

from custom.errors import InputError

__all__ = [
    "CSB_MODES",
    "predicted_class",
    "ConditionalSegmentationBoost",
    "SegmentationWithCSB",
    "check_csb_mode",
    "csb_gate",
    "lesion_probability",
]

CSB_MODES = ("hard", "soft", "off")


def check_csb_mode(mode: str) -> str:
    """Returns ``mode`` if it is one of :data:`CSB_MODES`, else raises :class:`InputError` (a ``ValueError``) naming both."""
    if mode not in CSB_MODES:
        raise InputError(f"csb_mode {mode!r} is unknown; use one of {', '.join(map(repr, CSB_MODES))}.")
    return mode


def check_lesion_threshold(threshold: float | None) -> float | None:
    """Returns ``threshold`` if it is None (the argmax) or a probability in [0, 1], else raises :class:`InputError`.

    Outside [0, 1] every image falls on one side: at 2, each is "normal" and hard CSB empties every mask.
    """
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0
    ):
        raise InputError(f"--lesion_threshold {threshold!r}: expected null or a probability in [0, 1].")
    return threshold


def check_temperature(temperature: float) -> float:
    """Returns ``temperature`` if it is a positive finite number (the logits' divisor), else raises :class:`InputError`.

    At 0 or below the probabilities would be undefined or reversed, lesion read as normal.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0.0 < temperature < math.inf:
        raise InputError(
            f"--temperature {temperature!r}: expected a positive number (1: the network's own probabilities)."
        )
    return float(temperature)


def check_num_classes(num_classes: int) -> int:
    """Returns ``num_classes`` if a head can have it (at least 2: class 0 is normal), else raises :class:`InputError`."""
    if num_classes < 2:
        raise InputError(f"--num_classes {num_classes}: expected at least 2 (class 0 = normal).")
    return num_classes


def lesion_probability(cls_logits: torch.Tensor) -> torch.Tensor:
    """Probability that each image contains a lesion, ``1 - softmax(cls_logits)[:, 0]``, shape (B,).

    Class 0 is "normal"; summing the complement covers both 2-class and 3-class heads.
    """
    return 1.0 - torch.softmax(cls_logits, dim=1)[:, 0]


def predicted_class(cls_logits: torch.Tensor, lesion_threshold: Optional[float] = None) -> torch.Tensor:
    """The class decision of each image, shape (B,): the argmax, or with ``lesion_threshold`` normal (0)
    when the lesion probability is below it and otherwise the most probable lesion class."""
    if lesion_threshold is None:
        return cls_logits.argmax(dim=1)
    lesion_class = cls_logits[:, 1:].argmax(dim=1) + 1
    is_lesion = lesion_probability(cls_logits) >= lesion_threshold
    return torch.where(is_lesion, lesion_class, torch.zeros_like(lesion_class))


def csb_gate(
    seg_logits: torch.Tensor, cls_logits: torch.Tensor, mode: str, lesion_threshold: Optional[float] = None
) -> torch.Tensor:
    """CSB-gated segmentation probability (section 3.4).

    Args:
        seg_logits: raw segmentation logits, (B, 1, *spatial).
        cls_logits: raw classification logits, (B, num_classes), class 0 = normal.
        mode: ``"hard"``, ``"soft"`` or ``"off"`` (see the module docstring).
        lesion_threshold: the hard gate's decision rule (see :func:`predicted_class`); None is the argmax.

    Returns:
        the gated foreground probability, same shape as ``seg_logits``.

    Raises:
        ValueError: for a mode not in :data:`CSB_MODES`.
    """
    prob = torch.sigmoid(seg_logits)
    if mode == "off":
        return prob
    # one gate value per image, broadcast over the channel and spatial dimensions
    per_image = [cls_logits.shape[0]] + [1] * (prob.dim() - 1)
    if mode == "hard":
        predicted_normal = predicted_class(cls_logits, lesion_threshold) == 0
        return prob.masked_fill(predicted_normal.view(per_image), 0.0)
    if mode == "soft":
        return prob * lesion_probability(cls_logits).to(prob.dtype).view(per_image)
    # spelled out rather than built from CSB_MODES: TorchScript cannot read module-level tuples
    raise ValueError("Unknown CSB mode '" + mode + "'; expected one of 'hard', 'soft', 'off'.")


class ConditionalSegmentationBoost(nn.Module):
    """:func:`csb_gate` as a parameter-free module holding its mode (section 3.4).

    Args:
        mode: ``"hard"`` (the paper), ``"soft"`` (section 5.6) or ``"off"``.
        lesion_threshold: the hard gate's decision rule (see :func:`predicted_class`); None is the argmax.

    Raises:
        ValueError: for a mode not in :data:`CSB_MODES`.
    """

    def __init__(self, mode: str = "hard", lesion_threshold: Optional[float] = None) -> None:
        super().__init__()
        self.mode = check_csb_mode(mode)
        self.lesion_threshold = lesion_threshold

    def forward(self, seg_logits: torch.Tensor, cls_logits: torch.Tensor) -> torch.Tensor:
        return csb_gate(seg_logits, cls_logits, self.mode, self.lesion_threshold)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class SegmentationWithCSB(nn.Module):
    """Single-tensor export wrapper: the CSB-gated segmentation probability of a multi-task network.

    ``verify_net_in_out`` and TorchScript export need one output tensor; this wraps any network whose
    forward returns ``{"seg": (B, 1, *spatial) logits[, "cls": (B, num_classes) logits]}`` and returns
    the gated probability (B, 1, *spatial). A network without a ``"cls"`` output (segmentation-only)
    gets the plain sigmoid, whatever the mode.

    Args:
        network: the multi-task network.
        mode: the CSB mode; ``None`` takes the mode of ``network.csb`` when it has one, else ``"hard"``.
    """

    def __init__(self, network: nn.Module, mode: str | None = None) -> None:
        super().__init__()
        if mode is None:
            own = getattr(network, "csb", None)
            mode = own.mode if isinstance(own, ConditionalSegmentationBoost) else "hard"
        self.network = network
        self.csb = ConditionalSegmentationBoost(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        if "cls" in out:
            return self.csb(out["seg"], out["cls"])
        return torch.sigmoid(out["seg"])
