"""Test-time augmentation by flips, averaged at the probability level.

Each flip of the input goes through the network, its segmentation is flipped back, and the views'
outputs are averaged as an ensemble's are (:func:`custom.networks.average_probabilities`: logits of
the mean probabilities, and their spread as ``disagreement``), so the CSB gate, the thresholds and
the metrics downstream are the same code with or without augmentation. The flips are those the
training pipeline draws (``RandFlipd`` on both axes), so every view is one the network has seen
during training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer

from custom.errors import InputError, check_list, is_whole
from custom.networks import average_probabilities

__all__ = ["FlipTTAInferer"]


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
