"""Test-time augmentation by flips, averaged at the probability level.

Each flip of the input goes through the network, its segmentation is flipped back, and the
segmentation (sigmoid) and classification (softmax) probabilities are averaged over the flips. The
averages are returned as logits again (``logit`` of the mean pixel probability, ``log`` of the mean
class probabilities), so the CSB gate, the thresholds and the metrics downstream are the same code
with or without augmentation. The flips are those the training pipeline draws (``RandFlipd`` on both
axes), so every view is one the network has seen during training.

The spread of the members' lesion probabilities is returned as ``disagreement`` (their standard
deviation, one value per image): a simple uncertainty that inference writes into each image's JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer

from custom.errors import InputError, check_list, is_whole

__all__ = ["FlipTTAInferer", "average_probabilities"]

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


def _is_view(axes: object) -> bool:
    """Whether ``axes`` is one view of ``--tta_flips``: a list of the spatial axes 0 and 1 it flips."""
    return isinstance(axes, (list, tuple)) and all(is_whole(a) and a in (0, 1) for a in axes)


class FlipTTAInferer(Inferer):
    """Runs ``inferer`` on flipped copies of the input and averages the predictions' probabilities.

    Args:
        flips: the spatial axes to flip for each view, counted over the spatial dimensions; ``[]`` is the
            unflipped image. In this bundle's layout (MONAI's PIL reader puts the width first) axis 0
            mirrors left-right and axis 1 up-down. Default: the image and its left-right mirror.
        inferer: the inferer to run for each view (default :class:`monai.inferers.SimpleInferer`).
    """

    def __init__(self, flips: Sequence[Sequence[int]] = ((), (0,)), inferer: Inferer | None = None) -> None:
        super().__init__()
        expected = (
            "a list of views, each a list of the axes it flips: 0 (left-right mirror) and 1 (up-down mirror), "
            "e.g. [[],[0]]"
        )
        views = check_list("--tta_flips", flips, None, _is_view, expected)
        if not views:
            raise InputError("--tta_flips []: give at least [[]] (the image itself).")
        self.flips = [tuple(int(a) for a in axes) for axes in views]
        self.inferer = inferer if inferer is not None else SimpleInferer()

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        outputs = []
        for axes in self.flips:
            dims = [a + 2 for a in axes]
            view = inputs.flip(dims) if dims else inputs
            output = self.inferer(view, network, *args, **kwargs)
            if not isinstance(output, dict):
                raise TypeError(f"FlipTTAInferer expects a dict of task outputs, got {type(output).__name__}")
            if dims and "seg" in output:
                output = {**output, "seg": output["seg"].flip(dims)}
            outputs.append(output)
        if len(outputs) == 1:
            return outputs[0]
        return average_probabilities(outputs)
