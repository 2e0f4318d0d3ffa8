"""Training that refuses to produce garbage: a non-finite loss or non-finite weights stop the run in one line.

A diverged run otherwise goes on: ignite keeps stepping with NaN gradients, validation scores the
NaN network (its masks empty, its Dice 0 on lesion images) and the checkpoints, the first of which
may still be kept as the best ``model.pt``, hold NaN weights that inference turns into empty masks
and constant answers. :class:`NonFiniteGuard` stops at the first non-finite loss, naming the epoch
and the iteration, and checks the weights at the end of every epoch before anything validates or
saves them. The check of a checkpoint that a tool loads is :func:`custom.checkpoints.check_finite_weights`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ignite.engine import Engine, Events
from torch import nn

from custom.checkpoints import non_finite_tensors
from custom.errors import UserError


class TrainingDiverged(UserError):
    """The loss or the weights became NaN or infinite; the message says where and what to try."""


ADVICE = "lower --learning_rate (or the batch's class weights), or check the images of that batch"


class NonFiniteGuard:
    """Stops training at the first non-finite loss, and before validation and saving when a weight is non-finite.

    Attach it before the checkpoint savers and the validation handler of the trainer (the first
    training handler in ``train.json``), so that its end-of-epoch check runs first: no epoch with
    non-finite weights is validated, saved or kept as the best model.

    Args:
        network: the network trained.
    """

    def __init__(self, network: nn.Module) -> None:
        self.network = network

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._check_loss)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._check_weights)

    def _check_loss(self, engine: Engine) -> None:
        output = engine.state.output
        first = output[0] if isinstance(output, (list, tuple)) and output else output
        loss = first.get("loss") if isinstance(first, Mapping) else None
        if loss is None:
            return
        value = float(loss)
        if not math.isfinite(value):
            iteration = (engine.state.iteration - 1) % engine.state.epoch_length + 1
            raise TrainingDiverged(
                f"training stopped: the loss became {value} at epoch {engine.state.epoch}, iteration {iteration} of "
                f"{engine.state.epoch_length}{_cases(engine)}; nothing of this epoch was saved; {ADVICE}."
            )

    def _check_weights(self, engine: Engine) -> None:
        bad = non_finite_tensors(self.network.state_dict())
        if bad:
            raise TrainingDiverged(
                f"training stopped: {len(bad)} weight tensors became NaN or infinite in epoch {engine.state.epoch} "
                f"(first: {bad[0]}); the epoch was neither validated nor saved; {ADVICE}."
            )


def _cases(engine: Engine) -> str:
    """`` (cases a, b, c)`` of the batch being trained, when the records carry ids."""
    batch = engine.state.batch  # MONAI engines decollate it into one dict per image
    if isinstance(batch, Mapping):
        ids = list(batch.get("id") or [])
    else:
        ids = [item["id"] for item in batch or [] if isinstance(item, Mapping) and "id" in item]
    if not ids:
        return ""
    shown = ", ".join(map(str, ids[:4])) + (", ..." if len(ids) > 4 else "")
    return f" (cases {shown})"
