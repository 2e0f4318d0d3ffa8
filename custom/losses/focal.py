"""Class-weighted focal cross-entropy: the Focal-BCE of N-Unet (Yang & Zhu, J. Imaging 2026, section 3.5.1, eq. 21)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import FocalLoss
from torch import nn


class FocalCrossEntropyLoss(nn.Module):
    """Focal-BCE (N-Unet paper, eq. 21) generalised to ``C`` classes: ``mean_i w_{y_i} (1 - p_t)^gamma (-log p_t)``.

    The network's classification head has ``C`` logits (``C = 2``: normal, lesion as in the paper;
    ``C = 3``: normal, benign, malignant). With ``C = 2`` the softmax over the two logits gives
    ``p_t = zeta`` for a lesion image and ``1 - zeta`` for a normal one, so this is exactly the paper's
    Focal-BCE with the lesion-class weight ``w = class_weights[1]`` (``N_neg / N_pos`` from the
    training split, see :func:`custom.data.class_weights`) and weight 1 for the normal class.

    The paper sums over samples; we average over the batch so the loss scale, and therefore the
    balance found by the uncertainty weighting, does not depend on the batch size.

    The per-element focal term comes from MONAI's ``FocalLoss`` (softmax variant); it returns one
    value per (sample, class) with zeros on the non-target classes, so summing over classes and
    averaging over samples gives the formula above.

    Args:
        gamma: focusing parameter (the paper uses 2).
        class_weights: one weight per class, or ``None`` for uniform weights.
    """

    def __init__(self, gamma: float = 2.0, class_weights: Sequence[float] | torch.Tensor | None = None) -> None:
        super().__init__()
        self.focal = FocalLoss(gamma=gamma, weight=class_weights, use_softmax=True, to_onehot_y=True, reduction="none")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            logits: (B, C) raw class scores.
            target: (B,) or (B, 1) integer class indices.
        """
        target = target.reshape(-1, 1).to(logits.device)
        return self.focal(logits, target).sum(dim=1).mean()
