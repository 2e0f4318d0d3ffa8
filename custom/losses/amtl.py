"""Adaptive multi-task loss with learned homoscedastic uncertainty (N-Unet paper, section 3.5.3, eq. 23-24)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class AMTLLoss(nn.Module):
    """Uncertainty-weighted average of task losses: ``L = 1/D * sum_i [L_i / (2 sigma_i^2) + log sigma_i]`` (eq. 24).

    Following Kendall et al., each task ``i`` has a learned ``s_i = log sigma_i^2`` (initialised to 0,
    i.e. ``sigma_i = 1`` as in the paper), which makes the formula ``1/D * sum_i [0.5 exp(-s_i) L_i + 0.5 s_i]``
    and keeps ``sigma_i`` positive without constraints. At initialisation the loss is ``sum_i L_i / (2 D)``,
    and its gradient in ``s_i`` vanishes at ``s_i = log L_i``.

    The loss is generic over named tasks: ``task_losses`` maps an output key of the network
    (``"seg"``, ``"cls"``) to the loss applied to ``pred[key], target[key]``. Tasks whose key the
    network does not output (single-task variants) are left out, so ``D`` counts only the tasks
    present in ``pred``.

    Being an ``nn.Module``, the ``s`` parameters go to the optimizer (without weight decay: decaying
    them would pull every task weight towards 1), into checkpoints, and are used unchanged for the
    validation loss.

    Args:
        task_losses: task key -> loss module taking ``(pred, target)``.
        learn_weights: ``False`` gives the fixed-weight ablation of eq. 22, ``sum_i w_i L_i`` (no ``s``).
        fixed_weights: task key -> weight used when ``learn_weights`` is ``False`` (default 1 each).
    """

    def __init__(
        self,
        task_losses: Mapping[str, nn.Module],
        learn_weights: bool = True,
        fixed_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if not task_losses:
            raise ValueError("AMTLLoss needs at least one task loss.")
        self.task_losses = nn.ModuleDict(dict(task_losses))
        self.learn_weights = learn_weights
        self.log_vars = nn.ParameterDict(
            {key: nn.Parameter(torch.zeros(())) for key in self.task_losses} if learn_weights else {}
        )
        unknown = set(fixed_weights or {}) - set(self.task_losses)
        if unknown:
            raise ValueError(f"fixed_weights names tasks {sorted(unknown)} that have no loss.")
        self.fixed_weights = {key: float((fixed_weights or {}).get(key, 1.0)) for key in self.task_losses}

    def task_terms(
        self, pred: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The unweighted loss ``L_i`` of every task present in ``pred``."""
        missing = [key for key in self.task_losses if key in pred and key not in target]
        if missing:
            raise KeyError(f"the target has no entry for task(s) {missing}; it has {sorted(target)}.")
        terms = {key: loss(pred[key], target[key]) for key, loss in self.task_losses.items() if key in pred}
        if not terms:
            raise KeyError(
                f"the network output {sorted(pred)} contains none of the loss tasks {sorted(self.task_losses)}."
            )
        return terms

    def forward(self, pred: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        terms = self.task_terms(pred, target)
        if not self.learn_weights:
            return sum(self.fixed_weights[k] * term for k, term in terms.items())
        total = sum(0.5 * torch.exp(-self.log_vars[k]) * term + 0.5 * self.log_vars[k] for k, term in terms.items())
        return total / len(terms)

    def task_weights(self) -> dict[str, float]:
        """The effective weight ``1 / (2 sigma_i^2)`` of each task, for logging."""
        if not self.learn_weights:
            return dict(self.fixed_weights)
        return {key: float(0.5 * torch.exp(-s.detach())) for key, s in self.log_vars.items()}
