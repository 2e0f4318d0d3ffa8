"""Averaging the outputs of several predictions of one image, at the probability level, under the output contract.

Every network returns ``{"seg": (B, 1, ...) logits, "cls": (B, C) logits}`` (the contract stated in
:mod:`custom.networks`); an average of several outputs keeps it. The segmentation (sigmoid) and
classification (softmax) probabilities are averaged and returned as logits again (``logit`` of the
mean pixel probability, ``log`` of the mean class probabilities), so the CSB gate, the thresholds and
the metrics downstream are the same code for one network, an ensemble of checkpoints
(:class:`ProbabilityEnsemble`, the folds of a cross-validation run) or test-time augmentation
(:class:`custom.engine.FlipTTAInferer`, one output per view).

The spread of the lesion probabilities is returned as ``disagreement`` (their standard deviation,
one value per image): a simple uncertainty that inference writes into each image's JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

__all__ = ["ProbabilityEnsemble", "average_probabilities", "ensemble"]

_EPS = 1e-6


def average_probabilities(outputs: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Averages multi-task outputs (``seg`` logits (B,1,...), ``cls`` logits (B,C)) at the probability level.

    Returns logits of the averaged probabilities under the same keys, plus ``disagreement`` (B,), the
    standard deviation of the members' lesion probabilities ``1 - p(normal)`` (zero for one member or
    a network without a classification head). When every output brings its own ``disagreement`` (each
    the mean of an ensemble's members, one output per TTA view), the standard deviation is over all of
    those members' predictions.
    """
    averaged: dict[str, torch.Tensor] = {}
    if "seg" in outputs[0]:
        prob = torch.stack([torch.sigmoid(o["seg"].float()) for o in outputs]).mean(0).clamp(_EPS, 1 - _EPS)
        averaged["seg"] = torch.logit(prob)
    if "cls" in outputs[0]:
        probs = torch.stack([torch.softmax(o["cls"].float(), dim=1) for o in outputs])
        averaged["cls"] = probs.mean(0).clamp_min(_EPS).log()
        spread = (1.0 - probs[..., 0]).var(0, unbiased=False)
        if all("disagreement" in o for o in outputs):
            # each output already averages members (an ensemble under TTA): the spread over every member
            # and view is the mean spread within a view plus the spread of the views' means
            spread = spread + torch.stack([o["disagreement"].float() ** 2 for o in outputs]).mean(0)
        averaged["disagreement"] = spread.sqrt()
    return averaged


class ProbabilityEnsemble(nn.Module):
    """Several networks of one architecture whose probabilities are averaged (``disagreement``: their spread).

    nnU-Net ensembles the five networks of its cross-validation by default: each fold's network saw a
    different 60 % of the data, and their average is steadier than any one of them.

    Args:
        members: the networks (each returns ``{"seg": logits, "cls": logits}`` or a subset).
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return average_probabilities([member(x) for member in self.members])


def ensemble(members: Sequence[nn.Module]) -> nn.Module:
    """The network that predicts with ``members``: the one member itself, else their :class:`ProbabilityEnsemble`."""
    return members[0] if len(members) == 1 else ProbabilityEnsemble(members)
