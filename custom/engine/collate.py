"""Output transforms that hand ``engine.state.output`` to metrics and losses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def collate_pred_label(pred_key: str = "pred", label_key: str = "label") -> Callable:
    """An ``output_transform`` returning the raw ``(pred, label)`` dicts re-batched.

    Evaluators decollate their output into one dict per image for post-processing; a loss such as
    :class:`custom.losses.AMTLLoss` needs batched tensors again, for example in
    ``ignite.metrics.Loss`` to report the validation loss with the learned task weights.
    """

    def _collate(output: Sequence[dict]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        pred = {k: torch.stack([o[pred_key][k] for o in output]) for k in output[0][pred_key]}
        label = {k: torch.stack([torch.as_tensor(o[label_key][k]) for o in output]) for k in output[0][label_key]}
        return pred, label

    return _collate


def batch_size_of(target: dict[str, torch.Tensor]) -> int:
    """Batch size of a target dict, for ``ignite.metrics.Loss(batch_size=...)``."""
    return len(next(iter(target.values())))
