"""An exponential moving average of the network's weights, validated, checkpointed and released in its place.

The weights of one epoch swing the validation Dice by about ±0.03 at this budget; their running
average (Polyak averaging) is smoother and usually a little better, so it is what validation scores,
what the best ``model.pt`` holds and what a release ships. Built on
``torch.optim.swa_utils.AveragedModel`` with the batch-norm statistics averaged too
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
    """EMA of ``network``: ``w_avg <- d * w_avg + (1 - d) * w`` after every training iteration.

    The decay warms up as ``d_t = min(decay, (1 + t) / (10 + t))`` (t: updates so far), so the
    average follows the fast early changes instead of holding on to the random initialisation for
    ``1 / (1 - decay)`` steps. With ``decay=None`` nothing is averaged and :attr:`module` is the
    network itself, so a config can always validate and save ``@averaged_network.module``.

    Attach it to the trainer (it is a training handler); checkpoint it with ``state_dict``.

    Args:
        network: the network being trained.
        decay: the EMA decay per iteration (0.999: a horizon of about 1000 iterations), or None.
    """

    def __init__(self, network: nn.Module, decay: float | None = None) -> None:
        if decay is not None and not 0.0 < float(decay) < 1.0:
            raise ValueError(f"ema_decay {decay!r}: expected a number strictly between 0 and 1, or null.")
        self.network = network
        self.decay = None if decay is None else float(decay)
        # the module inside DistributedDataParallel: the average is a plain network, the same on every rank
        self._source = getattr(network, "module", network)
        self.averaged = (
            AveragedModel(self._source, avg_fn=self._ema, use_buffers=True) if self.decay is not None else None
        )

    def _ema(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        n = float(num_averaged)
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
