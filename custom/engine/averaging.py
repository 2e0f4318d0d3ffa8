"""An average of the network's weights, validated, checkpointed and released in its place.

The weights of one epoch swing the validation Dice by about ±0.03 at this budget; their running
average is smoother and usually a little better, so it is what validation scores, what the best
``model.pt`` holds and what a release ships. Two averages, one after the other:

- an exponential moving average (Polyak averaging with a horizon of ``1 / (1 - decay)`` iterations);
- from an epoch on, the equal average of the weights after every iteration since (tail or
  Polyak-Ruppert averaging; stochastic weight averaging, P. Izmailov, D. Podoprikhin, T. Garipov,
  D. Vetrov, A. G. Wilson, "Averaging Weights Leads to Wider Optima and Better Generalization",
  UAI 2018, eq. 1, taken after every iteration instead of every cycle), which averages over the flat
  part of the curve instead of its last few hundred iterations.

Built on ``torch.optim.swa_utils.AveragedModel`` with the batch-norm statistics averaged too
(``use_buffers=True``), so the averaged network is complete without a pass over the data.
"""

from __future__ import annotations

from typing import Any

import torch
from ignite.engine import Engine, Events
from torch import nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["WeightAverage", "as_handler"]


def as_handler(handler: Any) -> Any:
    """``handler`` itself, for a config's handler list: MONAI's property checks and MONAI Label read every
    entry of ``train#handlers`` as a dict, so an object defined elsewhere in the config (the weight
    average, which validation and checkpoints also refer to) is listed as ``{"_target_": "custom.engine.as_handler", ...}``
    rather than as a bare ``"@reference"``."""
    return handler


class WeightAverage:
    """An average of ``network``'s weights, updated after every training iteration.

    Before epoch ``equal_from_epoch`` it is the EMA ``w_avg <- d * w_avg + (1 - d) * w``, whose decay
    warms up as ``d_t = min(decay, (1 + t) / (10 + t))`` (t: updates so far), so the average follows
    the fast early changes instead of holding on to the random initialisation for ``1 / (1 - decay)``
    steps; with ``decay=None`` it is the network's weights themselves. From the first iteration of epoch
    ``equal_from_epoch`` (1-based) it starts again as the equal average ``w_avg <- w_avg + (w - w_avg) /
    (t + 1)`` of the weights after every iteration since (the SWA average, eq. 1 of Izmailov et al.).
    The switch is read off the trainer's epoch and iteration, so a run resumed from a checkpoint goes on
    with the average it saved.

    With neither, nothing is averaged and :attr:`module` is the network itself, so a config can always
    validate and save ``@averaged_network.module``. Attach it to the trainer (it is a training handler);
    checkpoint it with ``state_dict``.

    Args:
        network: the network being trained.
        decay: the EMA decay per iteration (0.999: a horizon of about 1000 iterations), or None.
        equal_from_epoch: the epoch whose first iteration starts the equal average, or None (never).
    """

    def __init__(self, network: nn.Module, decay: float | None = None, equal_from_epoch: int | None = None) -> None:
        if decay is not None and not 0.0 < float(decay) < 1.0:
            raise ValueError(f"ema_decay {decay!r}: expected a number strictly between 0 and 1, or null.")
        if equal_from_epoch is not None and (
            isinstance(equal_from_epoch, bool) or not isinstance(equal_from_epoch, int) or equal_from_epoch < 1
        ):
            raise ValueError(f"swa_start_epoch {equal_from_epoch!r}: expected an epoch number (1 or more), or null.")
        self.network = network
        self.decay = None if decay is None else float(decay)
        self.equal_from_epoch = equal_from_epoch
        self.equal = False
        # the module inside DistributedDataParallel: the average is a plain network, the same on every rank
        self._source = getattr(network, "module", network)
        averaging = self.decay is not None or equal_from_epoch is not None
        self.averaged = AveragedModel(self._source, avg_fn=self._average, use_buffers=True) if averaging else None

    def _average(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        n = float(num_averaged)
        if self.equal:
            return averaged + (current - averaged) / (n + 1.0)
        if self.decay is None:  # no EMA before the equal average: the average is the network
            return current
        d = min(self.decay, (1.0 + n) / (10.0 + n))
        return averaged * d + current * (1.0 - d)

    @property
    def module(self) -> nn.Module:
        """The network to validate, save and release: the average, or the network when averaging is off."""
        return self.averaged.module if self.averaged is not None else self.network

    def attach(self, engine: Engine) -> None:
        if self.averaged is not None:
            engine.add_event_handler(Events.ITERATION_COMPLETED, self._update)

    def _update(self, engine: Engine) -> None:
        start = self.equal_from_epoch
        self.equal = start is not None and engine.state.epoch >= start
        if self.equal and engine.state.epoch == start and (engine.state.iteration - 1) % engine.state.epoch_length == 0:
            self.restart()  # the first iteration of the equal average: it starts from the network's weights
        self.averaged.update_parameters(self._source)

    def restart(self) -> None:
        """Starts the average again: the next update copies the network, then the decay warms up anew."""
        if self.averaged is not None:
            self.averaged.n_averaged.zero_()

    def state_dict(self) -> dict[str, Any]:
        return self.averaged.state_dict() if self.averaged is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.averaged is not None and state:
            self.averaged.load_state_dict(state)
