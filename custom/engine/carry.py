"""A long training carried across working blocks in one small file, overwritten every epoch.

A schedule of 150-200 CPU epochs does not fit into one working block, and a run folder does not
survive a change of machine. The full training checkpoint (:class:`~custom.engine.checkpoint.ResumableCheckpoint`)
holds Adam's moments in float32, about 109 MB for N-Unet, too large to commit every block. The carried
state keeps what the schedule needs to go on, under a size cap (25 MB by default, the repository's
limit for one file):

- the network's tensors in float16 (18.2 MB for N-Unet);
- the AMTL task parameters, the learning-rate scheduler, the trainer's epoch and iteration, the
  best validation score so far and the random generators of the process and of every random transform.

The exponential weight average is not carried (a second 18 MB would pass the cap): a continued run
restarts it from the network with its warm-up, and it follows the network again within a few hundred
iterations. The equal (SWA) average cannot be rebuilt that way, since it holds every iteration since
its epoch: once it runs, ``<state>.average.pt`` beside the state holds it (weights in the same
precision, and how many iterations it averages), and a continued run goes on with it.

Beside it, ``<state>.best.pt`` holds the best validated weights so far in the same precision (18 MB
for N-Unet), rewritten only when the best score improves: a continued run in a new folder writes its
``model.pt`` from it and replaces it only with a better epoch, so the best epoch of the whole schedule
survives a change of machine.

Adam's moments are left out: a resumed run starts Adam afresh, whose bias-corrected first steps have
the size of ordinary steps, so the learning-rate curve itself continues exactly. A resumed run works
on whatever machine it gets; it needs the same config (network, schedule, data).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from custom.engine.averaging import WeightAverage
from custom.engine.checkpoint import AtomicCheckpointSaver, RNGState, keep_configured_schedule
from custom.errors import InputError
from custom.fileio import atomic_file

__all__ = ["CarriedState"]

logger = logging.getLogger("nunet")

FORMAT = 2


def _compact(state: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    return {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v for k, v in state.items()}


def _expand(state: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    return {k: v.to(like[k].dtype) if torch.is_tensor(v) and k in like else v for k, v in state.items()}


class CarriedState:
    """Writes the carried state (see the module docstring) to ``path`` after every ``save_interval`` epochs
    and at the end; when the trainer starts and ``path`` exists, continues from it.

    Attach it first among the training handlers (as :class:`ResumableCheckpoint`), so handlers reading
    the epoch at start see the resumed one; it writes after all other handlers of an epoch, i.e.
    after the epoch's learning-rate step. With ``path`` None it does nothing.

    Args:
        path: the state file (one fixed path, overwritten atomically), or None.
        network: the network being trained.
        averaged: its weight average (:class:`WeightAverage`): an EMA restarts from the network on continuing,
            an equal average goes on from ``<state>.average.pt``.
        loss: the training loss (the AMTL task parameters).
        lr_scheduler: the learning-rate scheduler.
        best_model: the validator's saver of the best ``model.pt``, whose best score is carried.
        save_interval: epochs between writes.
        max_megabytes: the cap on the file's size; a state that would exceed it is an error.
        weights_dtype: ``"float16"`` or ``"float32"`` for the network and the best weights.
    """

    def __init__(
        self,
        path: str | None,
        network: nn.Module,
        averaged: WeightAverage | None = None,
        loss: nn.Module | None = None,
        lr_scheduler: LRScheduler | None = None,
        best_model: AtomicCheckpointSaver | None = None,
        save_interval: int = 1,
        max_megabytes: float = 25.0,
        weights_dtype: str = "float16",
    ) -> None:
        if weights_dtype not in ("float16", "float32"):
            raise InputError(f"carried state weights_dtype {weights_dtype!r}: expected float16 or float32.")
        self.path = None if path in (None, "") else Path(path)
        # the best weights so far, beside the state: the run folder (and its model.pt) may not survive the block
        self.best_path = None if self.path is None else self.path.with_suffix(".best.pt")
        self.average_path = None if self.path is None else self.path.with_suffix(".average.pt")
        self._best_written: float | None = None
        self.network = network
        self.averaged = averaged
        self.loss = loss
        self.lr_scheduler = lr_scheduler
        self.best_model = best_model
        self.save_interval = max(1, int(save_interval))
        self.max_bytes = float(max_megabytes) * 1e6
        self.dtype = getattr(torch, weights_dtype)
        self._rng = RNGState()

    def attach(self, engine: Engine) -> None:
        if self.path is None:
            return
        dataset = getattr(getattr(engine, "data_loader", None), "dataset", None)
        self._rng = RNGState(getattr(dataset, "transform", None))
        if self.path.is_file():
            engine.add_event_handler(Events.STARTED, self._load)
        # attached at start, after every other handler: the state saved is that after the epoch's lr step
        engine.add_event_handler(Events.STARTED, self._attach_writer)

    def _attach_writer(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self.save)
        engine.add_event_handler(Events.COMPLETED, self.save)

    def state_dict(self, engine: Engine) -> dict[str, Any]:
        """The carried state of ``engine``'s run (what :meth:`save` writes)."""
        return {
            "format": FORMAT,
            "trainer": dict(engine.state_dict()),
            "network": _compact(self.network.state_dict(), self.dtype),
            "loss": self.loss.state_dict() if self.loss is not None else {},
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else {},
            "best_model": self.best_model.state_dict() if self.best_model is not None else {},
            "rng": self._rng.state_dict(),
        }

    def save(self, engine: Engine) -> None:
        if idist.get_rank() != 0:
            return
        state = self.state_dict(engine)
        size = sum(t.numel() * t.element_size() for t in state["network"].values() if torch.is_tensor(t))
        if size > self.max_bytes:
            raise InputError(
                f"carried state {self.path}: the weights alone take {size / 1e6:.1f} MB, above the cap of "
                f"{self.max_bytes / 1e6:.0f} MB (train#handlers#0#max_megabytes)."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path, durable=True) as f:
            torch.save(state, f)
        self._save_best()
        self._save_average(engine)
        written = os.path.getsize(self.path)
        if written > self.max_bytes:
            logger.warning(
                "carried state %s is %.1f MB, above the cap of %.0f MB", self.path, written / 1e6, self.max_bytes / 1e6
            )

    def _best_score(self) -> float | None:
        saved = self.best_model._key_metric_checkpoint._saved if self.best_model is not None else []
        return float(saved[-1].priority) if saved else None

    def _save_best(self) -> None:
        """Writes ``<state>.best.pt`` (the validated weights in ``weights_dtype``) when the best score changed: the
        best saver has just written ``model.pt`` from the same weights."""
        score = self._best_score()
        if score is None or score == self._best_written:
            return
        validated = self.averaged.module if self.averaged is not None else self.network
        with atomic_file(self.best_path, durable=True) as f:
            torch.save({"score": score, "weights": _compact(validated.state_dict(), self.dtype)}, f)
        self._best_written = score

    def _save_average(self, engine: Engine) -> None:
        """Writes ``<state>.average.pt`` while the equal average runs (see the module docstring)."""
        if self.averaged is None or not self.averaged.equal:
            return
        average = {
            "iteration": engine.state.iteration,
            "n_averaged": int(self.averaged.averaged.n_averaged),
            "weights": _compact(self.averaged.module.state_dict(), self.dtype),
        }
        with atomic_file(self.average_path, durable=True) as f:
            torch.save(average, f)

    def _restore_average(self, iteration: int) -> None:
        """Goes on with the equal average saved at ``iteration``; restarts the average otherwise (an EMA, or an
        equal average that has not begun)."""
        self.averaged.restart()
        if not self.average_path.is_file():
            return
        try:
            saved = torch.load(self.average_path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for a damaged file
            raise InputError(f"{self.average_path}: not a readable carried weight average ({e}).") from e
        # an average of another point of the schedule, or of another run, is not this run's
        if not isinstance(saved, dict) or saved.get("iteration") != iteration:
            logger.warning(
                "%s is not of iteration %d of the carried state: the average restarts", self.average_path, iteration
            )
            return
        module = self.averaged.module
        module.load_state_dict(_expand(saved["weights"], module.state_dict()))
        self.averaged.averaged.n_averaged.fill_(int(saved["n_averaged"]))

    def _restore_best(self, best: dict[str, Any]) -> None:
        """Carries the best score when its weights are on disk: ``model.pt`` beside the run (the same folder), or
        ``<state>.best.pt``, from which ``model.pt`` is written again in a new folder. Without either, the
        continued run saves its own best, so a run always ends with its best epoch in ``model.pt``."""
        checkpoint = self.best_model._key_metric_checkpoint
        handler = checkpoint.save_handler
        path = Path(handler.dirname) / (handler.filename or "model.pt")
        carried = (
            torch.load(self.best_path, map_location="cpu", weights_only=True) if self.best_path.is_file() else None
        )
        if not path.is_file() and carried is not None:
            validated = self.averaged.module if self.averaged is not None else self.network
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(path, durable=True) as f:
                torch.save(_expand(carried["weights"], validated.state_dict()), f)
            logger.info("%s: the best weights so far (score %.4f) from %s", path, carried["score"], self.best_path)
        if path.is_file():
            checkpoint.load_state_dict(best)
            self._best_written = carried["score"] if carried is not None else None
        else:
            logger.info("the carried best score is not kept: %s does not exist; this run saves its own best", path)

    def _load(self, engine: Engine) -> None:
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for a damaged file
            raise InputError(f"{self.path}: not a readable carried state ({e}).") from e
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise InputError(f"{self.path}: not a carried training state of this bundle (format {FORMAT}).")
        try:
            device = next(self.network.parameters()).device
            self.network.load_state_dict(_expand(state["network"], self.network.state_dict()))
            self.network.to(device)
            if self.averaged is not None:
                self._restore_average(state["trainer"]["iteration"])
            if self.loss is not None and state["loss"]:
                self.loss.load_state_dict(state["loss"])
        except RuntimeError as e:  # a state of another network or class count
            raise InputError(
                f"{self.path}: the carried weights do not fit this network ({str(e).splitlines()[0]})."
            ) from e
        max_epochs = engine.state.max_epochs
        engine.load_state_dict({**state["trainer"], "max_epochs": max_epochs})
        if engine.state.epoch >= max_epochs:
            raise InputError(
                f"{self.path}: the carried run is at epoch {engine.state.epoch}, the run plans {max_epochs}."
            )
        if self.lr_scheduler is not None and state["lr_scheduler"]:
            configured = self.lr_scheduler.state_dict()
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])
            keep_configured_schedule("lr_scheduler", self.lr_scheduler, configured)
            for group, rate in zip(self.lr_scheduler.optimizer.param_groups, self.lr_scheduler.get_last_lr()):
                group["lr"] = rate  # the optimiser starts afresh, at the schedule's current rate
        if self.best_model is not None and state["best_model"]:
            self._restore_best(state["best_model"])
        self._rng.load_state_dict(state["rng"])
        logger.info("continuing from %s at epoch %d of %d (Adam restarts)", self.path, engine.state.epoch, max_epochs)
