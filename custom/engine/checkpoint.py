"""Training checkpoints that include the trainer's own state, so an interrupted run can continue."""

from __future__ import annotations

import glob
import os
import re

from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader, CheckpointSaver
from torch import nn

from custom.errors import InputError


def latest_checkpoint(save_dir: str) -> str | None:
    """The ``checkpoint_epoch=N.pt`` in ``save_dir`` with the highest N, or None."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(save_dir), "checkpoint_epoch=*.pt")):
        match = re.search(r"checkpoint_epoch=(\d+)\.pt$", path)
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


class ResumableCheckpoint:
    """Saves ``objects`` plus the trainer (epoch, iteration) every ``save_interval`` epochs; optionally resumes.

    A config cannot list the trainer among the objects its own handlers save (the trainer is built
    from those handlers: a circular reference), so this handler adds the engine it is attached to.
    With ``resume=True`` the newest ``checkpoint_epoch=N.pt`` in ``save_dir`` is loaded when the
    trainer starts: network, AMTL parameters, optimiser, scheduler and the epoch count, so training
    continues at epoch N + 1 with the learning rate it had. Only rank 0 writes (ignite's default).

    Attach it first among the training handlers, so that handlers reading the epoch at start
    (the training log's ETA) see the resumed epoch; the saver itself runs after all other handlers.

    Args:
        save_dir: folder of the checkpoints (the run's output_dir).
        objects: name -> object with ``state_dict``/``load_state_dict`` (network, loss, optimizer, lr_scheduler).
        save_interval: epochs between checkpoints; only the newest is kept.
        resume: continue from the newest checkpoint in ``save_dir``; it is an error if there is none.
        map_location: device to load tensors to.
    """

    def __init__(
        self,
        save_dir: str,
        objects: dict[str, nn.Module],
        save_interval: int = 1,
        resume: bool = False,
        map_location: object = None,
    ) -> None:
        self.save_dir = save_dir
        self.objects = objects
        self.save_interval = save_interval
        self.resume = resume
        self.map_location = map_location
        self._saver: CheckpointSaver | None = None

    def attach(self, engine: Engine) -> None:
        everything = {**self.objects, "trainer": engine}
        if self.resume:
            path = latest_checkpoint(self.save_dir)
            if path is None:
                raise InputError(f"--resume: no checkpoint_epoch=N.pt in {self.save_dir!r} to continue from.")
            CheckpointLoader(load_path=path, load_dict=everything, map_location=self.map_location).attach(engine)
        self._saver = CheckpointSaver(
            save_dir=self.save_dir, save_dict=everything, save_interval=self.save_interval, n_saved=1, epoch_level=True
        )
        # attached when the run starts, i.e. after every other handler: the saved scheduler and AMTL
        # state must be those after the epoch's learning-rate step, or a resumed run lags one epoch
        engine.add_event_handler(Events.STARTED, self._attach_saver)

    def _attach_saver(self, engine: Engine) -> None:
        if self._saver is not None:
            self._saver.attach(engine)
            self._saver = None
