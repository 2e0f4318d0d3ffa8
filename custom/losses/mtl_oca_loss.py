"""The MTL-OCA training loss (Lu et al., Front. Oncol. 2025, section 2.2, eq. 4-5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MTLOCALoss(nn.Module):
    """``L = L_s + L_c`` with ``L_s = alpha * L_soft + L_aug`` (MTL-OCA, eq. 4-5), all cross-entropies, no task weighting.

    - ``L_aug``: cross-entropy of the final mask ``pred["seg"]`` against ``target["seg"]``. The mask is one
      sigmoid (lesion) channel, so its two-class cross-entropy is binary cross-entropy with logits.
    - ``L_soft``: the same on each coarse mask in ``pred["aux_seg"]`` (the supervised soft object
      regions), weighted by ``alpha`` = 0.4 (from OCRNet). Networks emit ``aux_seg`` only in training
      mode, so on evaluation outputs (the validation loss) the term is skipped and the loss is
      ``L_aug + L_c``.
    - ``L_c``: softmax cross-entropy of ``pred["cls"]`` against the integer class ``target["cls"]``.

    Both segmentation terms average over pixels and images, the classification term over images.

    Args:
        alpha: weight of the coarse-mask term.
    """

    def __init__(self, alpha: float = 0.4) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(
        self, pred: Mapping[str, torch.Tensor | Sequence[torch.Tensor]], target: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        mask = target["seg"].float()
        loss = F.binary_cross_entropy_with_logits(pred["seg"], mask)
        for coarse in pred.get("aux_seg", ()):
            loss = loss + self.alpha * F.binary_cross_entropy_with_logits(coarse, mask)
        logits = pred["cls"]
        return loss + F.cross_entropy(logits, target["cls"].reshape(-1).long().to(logits.device))
