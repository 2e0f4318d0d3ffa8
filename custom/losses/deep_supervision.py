"""The multi-task loss of Aumente-Maestro et al. 2025 (section 3.4, eq. 1-4): deep-supervision Dice + focal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.losses import DeepSupervisionLoss, DiceLoss
from torch import nn

from custom.losses.focal import FocalCrossEntropyLoss

__all__ = ["DeepSupervisionDiceFocalLoss", "InverseDepthDeepSupervisionLoss"]


class InverseDepthDeepSupervisionLoss(DeepSupervisionLoss):
    """MONAI's ``DeepSupervisionLoss`` with the weights ``w_i = 1 / i`` of Aumente-Maestro et al., eq. 2.

    ``forward(outputs, target)`` takes the segmentation outputs final first (``i = 1``, weight 1),
    then the deep-supervision outputs in decreasing importance (weights 1/2, 1/3, ...), and returns
    ``sum_i w_i L(output_i, target)``, unnormalised as in eq. 2. Outputs at a lower resolution get a
    nearest-neighbour downsized target (MONAI's behaviour). The weights follow the number of outputs
    of each call, so the same loss serves training outputs (with deep supervision) and evaluation
    outputs (final mask only, weight 1).
    """

    def get_weights(self, levels: int = 1) -> list[float]:
        return [1.0 / i for i in range(1, max(levels, 1) + 1)]


class DeepSupervisionDiceFocalLoss(nn.Module):
    """``L = lambda * L_seg + (1 - lambda) * L_cls`` (Aumente-Maestro et al., eq. 4).

    - ``L_seg`` (eq. 1-2): ``sum_i (1 / i) (1 - Dice_i)`` over ``pred["seg"]`` (``i = 1``) followed by
      the list ``pred["aux_seg"]`` when present, with ``Dice = (2 S.G + eps) / (S^2 + G^2 + eps)``,
      ``eps = 1``, on the sigmoid of the logits: MONAI's ``DiceLoss`` with ``squared_pred`` (the
      squared denominator of eq. 1) and ``smooth_nr = smooth_dr = eps``.
    - ``L_cls`` (eq. 3): focal loss with ``gamma = 2`` and no class weights
      (:class:`custom.losses.FocalCrossEntropyLoss`), averaged over the batch.

    Where the paper is silent: the Dice is computed per image and averaged over the batch
    (``batch_dice=False``), so an image with an empty mask (a normal image) still pulls its prediction
    towards empty through ``eps``; with ``batch_dice=True`` its pixels would only add to the batch's
    denominator. Eq. 2 is not normalised by ``sum_i w_i``, so the training loss (4 outputs, weights
    summing to 2.08) and the validation loss (final output only) differ in scale, as they do in the
    paper's formula.

    The loss has no learnable parameters and reads only the ``seg`` / ``aux_seg`` / ``cls`` keys of the
    network output and the ``seg`` / ``cls`` keys of the target.

    Args:
        lambda_seg: the task balance ``lambda`` (0.85 on Curated BUSI, 0.4 on BUS-UCLM in the paper).
        gamma: focal-loss focusing parameter.
        smooth: ``eps`` of eq. 1.
        batch_dice: one Dice over the whole batch instead of one per image.
        class_weights: optional per-class weights of the focal loss (the paper uses none).
    """

    def __init__(
        self,
        lambda_seg: float = 0.85,
        gamma: float = 2.0,
        smooth: float = 1.0,
        batch_dice: bool = False,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= lambda_seg <= 1.0:
            raise ValueError(f"lambda_seg must lie in [0, 1], got {lambda_seg}.")
        self.lambda_seg = float(lambda_seg)
        dice = DiceLoss(sigmoid=True, squared_pred=True, smooth_nr=smooth, smooth_dr=smooth, batch=batch_dice)
        self.seg_loss = InverseDepthDeepSupervisionLoss(dice)
        self.cls_loss = FocalCrossEntropyLoss(gamma=gamma, class_weights=class_weights)

    def task_terms(self, pred: Mapping, target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The unweighted ``L_seg`` and ``L_cls``."""
        outputs = [pred["seg"], *pred.get("aux_seg", [])]
        return {"seg": self.seg_loss(outputs, target["seg"].float()), "cls": self.cls_loss(pred["cls"], target["cls"])}

    def forward(self, pred: Mapping, target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        terms = self.task_terms(pred, target)
        weights = self.task_weights()
        return weights["seg"] * terms["seg"] + weights["cls"] * terms["cls"]

    def task_weights(self) -> dict[str, float]:
        """``lambda`` and ``1 - lambda``; :class:`custom.engine.TrainingLog` logs them like AMTL's learned weights."""
        return {"seg": self.lambda_seg, "cls": 1.0 - self.lambda_seg}
