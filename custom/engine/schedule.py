"""Epoch-level training decisions: when the learning rate steps and when training stops early.

Schedules that follow the clock (cosine, warm-up) step after every epoch. Schedules and stopping
rules that follow a validation metric (``ReduceLROnPlateau``, early stopping, as in the recipe of
Aumente-Maestro et al.) act right after each validation run, on that run's metric, so a validation
interval above 1 does not count a stale value again. Both are plain settings of ``train.json``
(``lr_step_metric``, ``early_stop_patience``), so a peer's recipe is a declarative override that
``multi_gpu_train.json`` cannot drop.

Reference: C. Aumente-Maestro, J. Díez, B. Remeseiro, "A multi-task framework for breast cancer
segmentation and classification in ultrasound imaging", Computer Methods and Programs in
Biomedicine 260 (2025) 108540.
"""

from __future__ import annotations

from typing import Any

from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping as IgniteEarlyStopping

from custom.errors import InputError

__all__ = ["EarlyStopping", "LrSchedule"]


def _metric(validator: Engine, name: str) -> float:
    metrics = validator.state.metrics
    if name not in metrics:
        raise InputError(f"validation metric {name!r} is not computed; available: {', '.join(sorted(metrics))}.")
    return float(metrics[name])


class LrSchedule:
    """Steps ``lr_scheduler`` after each training epoch, or after each validation with its ``metric``.

    Args:
        lr_scheduler: a ``torch.optim.lr_scheduler`` scheduler.
        validator: the validation evaluator; needed when ``metric`` is given.
        metric: ``None`` steps the clock (``step()`` every epoch); a validation metric name (e.g.
            ``"val_loss"``) calls ``step(value)`` after every validation (``ReduceLROnPlateau``).
    """

    def __init__(self, lr_scheduler: Any, validator: Engine | None = None, metric: str | None = None) -> None:
        if metric is not None and validator is None:
            raise ValueError("LrSchedule: a metric-driven schedule needs the validator.")
        self.lr_scheduler = lr_scheduler
        self.validator = validator
        self.metric = metric

    def attach(self, engine: Engine) -> None:
        if self.metric is None:
            engine.add_event_handler(Events.EPOCH_COMPLETED, lambda _: self.lr_scheduler.step())
        else:
            self.validator.add_event_handler(
                Events.COMPLETED, lambda v: self.lr_scheduler.step(_metric(v, self.metric))
            )


class EarlyStopping:
    """Ends training after ``patience`` validations without a better ``metric`` (ignite's ``EarlyStopping``).

    Args:
        validator: the validation evaluator whose metric is watched.
        patience: validations without improvement before stopping; ``None`` never stops early.
        metric: the validation metric.
        mode: ``"min"`` when lower is better (a loss), ``"max"`` when higher is.
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(
        self,
        validator: Engine,
        patience: int | None = None,
        metric: str = "val_loss",
        mode: str = "min",
        min_delta: float = 0.0,
    ) -> None:
        if mode not in ("min", "max"):
            raise InputError(f"early stopping mode {mode!r}: expected min or max.")
        self.validator = validator
        self.patience = patience
        self.metric = metric
        self.sign = -1.0 if mode == "min" else 1.0
        self.min_delta = min_delta

    def attach(self, engine: Engine) -> None:
        if self.patience is None:
            return
        stopper = IgniteEarlyStopping(self.patience, self._score, engine, min_delta=self.min_delta)
        self.validator.add_event_handler(Events.COMPLETED, stopper)

    def _score(self, validator: Engine) -> float:
        return self.sign * _metric(validator, self.metric)  # ignite's EarlyStopping maximises the score
