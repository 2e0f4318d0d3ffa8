"""Training checkpoints that hold everything an interrupted run needs to continue, written atomically.

MONAI's ``CheckpointSaver`` writes with ignite's ``DiskSaver(atomic=False)``, and ignite deletes the
checkpoint being replaced before writing its successor: a run killed while saving leaves a truncated
``checkpoint_epoch=N.pt`` and no older one, or no complete ``model.pt``. :class:`AtomicCheckpointSaver`
is the same handler writing through :class:`AtomicDiskSaver` (temporary file, ``fsync``, rename, then
the old file's removal), so a complete checkpoint is on disk at every moment.
"""

from __future__ import annotations

import logging
import os
import random
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointSaver
from monai.transforms import Compose, Randomizable
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from custom.checkpoints import latest_checkpoint, training_checkpoints
from custom.errors import InputError
from custom.fileio import atomic_file, atomic_write_json
from custom.provenance import RunProvenance, bundle_run_provenance, records_sha256, running_bundle_parser

logger = logging.getLogger("nunet")


class AtomicDiskSaver(BaseSaveHandler):
    """Ignite save handler writing ``torch.save`` output atomically and durably; only rank 0 writes.

    Ignite's ``Checkpoint`` asks its handler to remove the checkpoint being replaced *before* it writes
    the successor (with one checkpoint kept, or a fixed name like ``model.pt``, a kill in between
    leaves none). Here a removal waits until the next checkpoint is completely written.

    Args:
        dirname: the folder of the checkpoints.
        filename: a fixed file name used instead of ignite's (MONAI's ``key_metric_filename``, ``model.pt``).
    """

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        self.dirname = Path(dirname)
        self.filename = filename
        self._replaced: list[Path] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        if idist.get_rank() == 0:
            path = self.dirname / (self.filename or filename)
            with atomic_file(path, durable=True) as f:
                torch.save(checkpoint, f)
            for old in self._replaced:
                if old != path:
                    old.unlink(missing_ok=True)
            self._replaced.clear()

    def remove(self, filename: str) -> None:
        self._replaced.append(self.dirname / (self.filename or filename))


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` (same arguments, same file names) with every file written atomically.

    Use it wherever a config has ``CheckpointSaver``, in particular for the best ``model.pt``, which
    MONAI otherwise overwrites in place.
    """

    def __init__(self, save_dir: str, save_dict: dict, **kwargs: Any) -> None:
        super().__init__(save_dir=save_dir, save_dict=save_dict, **kwargs)
        for checkpoint, filename in (
            (self._final_checkpoint, self._final_filename),
            (self._key_metric_checkpoint, kwargs.get("key_metric_filename")),
            (self._interval_checkpoint, None),
        ):
            if checkpoint is not None:
                checkpoint.save_handler = AtomicDiskSaver(save_dir, filename)

    def state_dict(self) -> dict:
        """The key-metric tracking list (the best score so far and its file), for the training checkpoint.

        MONAI can store it only inside the best model file itself (``key_metric_save_state``), which
        would make ``model.pt`` more than weights. Saved with the training checkpoint instead, a
        resumed run replaces ``model.pt`` only when it beats the best epoch before the interruption.
        """
        return dict(self._key_metric_checkpoint.state_dict()) if self._key_metric_checkpoint is not None else {}


# what a scheduler's state records about where it is, as opposed to the schedule's shape
_SCHEDULE_POSITION = (
    "last_epoch",
    "_step_count",
    "_last_lr",
    "_get_lr_called_within_step",
    "_is_initial",
    "base_lrs",
    "best",
    "num_bad_epochs",
    "cooldown_counter",  # ReduceLROnPlateau
)


def keep_configured_schedule(name: str, scheduler: LRScheduler, configured: Mapping[str, Any]) -> None:
    """Gives a resumed scheduler the config's shape (``T_max``, ``t_total``, warm-up, ...) at the checkpoint's position.

    A scheduler's state dict holds its hyperparameters as well as its step count, so loading it
    silently replaced a changed schedule (``--epochs 45`` resumed as 30 kept decaying towards 30).
    """
    loaded = scheduler.state_dict()
    changed = {k: (loaded[k], v) for k, v in configured.items() if k not in _SCHEDULE_POSITION and loaded.get(k) != v}
    if changed:
        scheduler.load_state_dict({**loaded, **{k: new for k, (_, new) in changed.items()}})
        # the learning rate the new shape has at this step; recursive schedules (CosineAnnealingLR)
        # step from the current rate, so it must be the new one before they step again
        closed_form = getattr(scheduler, "_get_closed_form_lr", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # get_lr outside step() warns; here it is the closed form
            rates = closed_form() if closed_form is not None else scheduler.get_lr()
        for group, rate in zip(scheduler.optimizer.param_groups, rates):
            group["lr"] = rate
        scheduler._last_lr = list(rates)
        described = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items())
        logger.warning(
            "resume: %s follows the config's schedule (%s) from step %d", name, described, scheduler.last_epoch
        )


def _randomizables(transform: Any) -> list[Randomizable]:
    """Every ``Randomizable`` in ``transform``, depth first in a fixed order: itself, a ``Compose``'s members,
    and the random transforms held as attributes (``RandZoomd`` draws from its own ``RandZoom``)."""
    found: list[Randomizable] = []
    seen: set[int] = set()

    def visit(t: Any) -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        if isinstance(t, Randomizable):
            found.append(t)
        children = list(t.transforms) if isinstance(t, Compose) else []
        children += [v for v in getattr(t, "__dict__", {}).values() if isinstance(v, Randomizable)]
        for child in children:
            visit(child)

    visit(transform)
    return found


def _numpy_state(state: tuple) -> dict[str, Any]:
    """A ``RandomState.get_state()`` tuple as tensors and numbers (``torch.load(weights_only=True)`` refuses arrays)."""
    name, keys, pos, has_gauss, cached = state
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _numpy_tuple(state: Mapping[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return state["name"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"]


class RNGState:
    """The random number generators of a training process, as a checkpointable object.

    Covers the global torch generator (CPU, and every CUDA device when there is one), numpy's global
    generator, Python's ``random``, and the generator of every random MONAI transform in
    ``transform`` (each holds its own ``numpy.random.RandomState``). With ``num_workers = 0`` those
    transforms run in the training process and are restored exactly; with workers, MONAI re-seeds
    the workers' copies each epoch from the torch generator, which is restored, so the epochs after
    a resume draw the same augmentations either way. Data-loader shuffling draws from the torch
    generator too. Under DDP only rank 0's state is saved and every rank restores it.

    Args:
        transform: the training dataset's transform (None: no transform generators).
    """

    def __init__(self, transform: Any = None) -> None:
        self.transforms = _randomizables(transform) if transform is not None else []

    def state_dict(self) -> dict[str, Any]:
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state(np.random.get_state()),
            "python": random.getstate(),
            "transforms": [_numpy_state(t.R.get_state()) for t in self.transforms],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        np.random.set_state(_numpy_tuple(state["numpy"]))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        if len(state["transforms"]) != len(self.transforms):
            logger.warning(
                "checkpoint has %d random transforms, the config %d: their generators are not restored",
                len(state["transforms"]),
                len(self.transforms),
            )
            return
        for t, saved in zip(self.transforms, state["transforms"]):
            t.R.set_state(_numpy_tuple(saved))


class ResumableCheckpoint:
    """Saves ``objects``, the trainer, the RNG state and the run's provenance every ``save_interval`` epochs; resumes.

    A config cannot list the trainer among the objects its own handlers save (the trainer is built
    from those handlers: a circular reference), so this handler adds the engine it is attached to.
    With ``resume=True`` the newest ``checkpoint_epoch=N.pt`` in ``save_dir`` is loaded when the
    trainer starts: network, AMTL parameters, optimiser, scheduler, the epoch count and the random
    generators (:class:`RNGState`), so training continues at epoch N + 1 with the learning rate and
    the random draws it would have had. Checkpoints are written atomically
    (:class:`AtomicCheckpointSaver`); only the newest is kept, and it is replaced only once its successor
    is complete; after ``--resume`` too, where the checkpoint resumed from goes once the first new one
    is written. Only rank 0 writes.

    When the run starts, ``<save_dir>/provenance.json`` lists every invocation of the run (the first,
    then each resume): command line, merged config, resolved keys, git commit, package versions and
    the SHA-256 of the datalist and of the training records (:mod:`custom.provenance`). Each
    checkpoint holds the same list under ``provenance``.

    Attach it first among the training handlers, so that handlers reading the epoch at start
    (the training log's ETA) see the resumed epoch; the saver itself runs after all other handlers.

    Args:
        save_dir: folder of the checkpoints (the run's output_dir).
        objects: name -> object with ``state_dict``/``load_state_dict`` (network, loss, optimizer, lr_scheduler).
        best_model: the validator's saver of the best model (:class:`AtomicCheckpointSaver`), whose best
            score travels in the checkpoint so that a resumed run keeps ``model.pt`` unless it beats it.
        save_interval: epochs between checkpoints; only the newest is kept.
        resume: continue from the newest checkpoint in ``save_dir``; it is an error if there is none.
        map_location: device to load tensors to.
    """

    def __init__(
        self,
        save_dir: str,
        objects: dict[str, nn.Module],
        best_model: AtomicCheckpointSaver | None = None,
        save_interval: int = 1,
        resume: bool = False,
        map_location: object = None,
    ) -> None:
        self.save_dir = save_dir
        self.objects = dict(objects) if best_model is None else {**objects, "best_model": best_model}
        self.save_interval = save_interval
        self.resume = resume
        self.map_location = map_location
        # built here: the parser is found among the callers only while the config is being evaluated
        self.provenance = RunProvenance(bundle_run_provenance(running_bundle_parser()))
        self._saver: CheckpointSaver | None = None

    def attach(self, engine: Engine) -> None:
        dataset = getattr(getattr(engine, "data_loader", None), "dataset", None)
        records = getattr(dataset, "data", None)
        if isinstance(records, list):
            self.provenance.current["training_records_sha256"] = records_sha256(records)
        everything = {
            **self.objects,
            "trainer": engine,
            "rng": RNGState(getattr(dataset, "transform", None)),
            "provenance": self.provenance,
        }
        if self.resume:
            path = latest_checkpoint(self.save_dir)
            if path is None:
                raise InputError(f"--resume: no checkpoint_epoch=N.pt in {self.save_dir!r} to continue from.")
            engine.add_event_handler(Events.STARTED, self._load, path, everything)
        engine.add_event_handler(Events.STARTED, self._write_provenance)
        self._saver = AtomicCheckpointSaver(
            save_dir=self.save_dir, save_dict=everything, save_interval=self.save_interval, n_saved=1, epoch_level=True
        )
        # attached when the run starts, i.e. after every other handler: the saved scheduler and AMTL
        # state must be those after the epoch's learning-rate step, or a resumed run lags one epoch
        engine.add_event_handler(Events.STARTED, self._attach_saver)

    def _load(self, engine: Engine, path: str, everything: dict[str, Any]) -> None:
        try:
            checkpoint = torch.load(path, map_location=self.map_location, weights_only=True)
        except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for a damaged file
            raise InputError(f"{path}: not a readable checkpoint ({e}); delete it to resume from an older one.") from e
        # an object with nothing to save (the weight average when it is off) may be absent from older checkpoints
        missing = [
            k
            for k in [*self.objects, "trainer"]
            if k not in checkpoint and (k == "trainer" or self.objects[k].state_dict())
        ]
        if missing:
            raise InputError(
                f"{path}: checkpoint lacks {', '.join(missing)}; it was not written by this training config."
            )
        # checkpoints written before RNG state and provenance were saved still resume, with fresh generators
        to_load = {k: v for k, v in everything.items() if k in checkpoint}
        max_epochs = engine.state.max_epochs
        schedules = {k: v.state_dict() for k, v in to_load.items() if isinstance(v, LRScheduler)}
        Checkpoint.load_objects(to_load=to_load, checkpoint=checkpoint)
        engine.state.max_epochs = max_epochs  # the run's --epochs, not the one the checkpoint was written with
        for name, configured in schedules.items():
            keep_configured_schedule(name, to_load[name], configured)
        if engine.state.epoch > max_epochs:
            raise InputError(f"{path}: checkpoint is at epoch {engine.state.epoch}, beyond --epochs {max_epochs}.")
        logger.info("resumed from %s at epoch %d of %d", path, engine.state.epoch, max_epochs)

    def _write_provenance(self, engine: Engine) -> None:
        if idist.get_rank() == 0:
            atomic_write_json(os.path.join(self.save_dir, "provenance.json"), self.provenance.state_dict())

    def _attach_saver(self, engine: Engine) -> None:
        if self._saver is not None:
            self._saver.attach(engine)
            self._saver = None
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._remove_superseded)

    def _remove_superseded(self, engine: Engine) -> None:
        """Deletes every checkpoint but the one this epoch wrote: a resumed run's saver knows only its own
        files, so the checkpoint it resumed from would otherwise stay beside the new ones, and a new run
        in the folder of an older, longer one would leave that run's checkpoint as the newest (which
        ``--resume`` would then continue)."""
        current = os.path.join(self.save_dir, f"checkpoint_epoch={engine.state.epoch}.pt")
        if idist.get_rank() != 0 or not os.path.isfile(current):
            return
        for epoch, path in training_checkpoints(self.save_dir):
            if path != current:
                if epoch > engine.state.epoch:
                    logger.warning("%s: removed, a checkpoint of an earlier run in this folder", path)
                os.remove(path)
