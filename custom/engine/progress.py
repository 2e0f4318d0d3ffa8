"""A progress bar of the iterations of an epoch (training) or of a pass (inference), with images per second, on a terminal.

On a CPU an epoch of N-Unet takes minutes; the one-line-per-epoch log of
:class:`custom.engine.TrainingLog` (with its ETA) stays the record, and this bar shows life in between.
It uses ignite's tqdm ``ProgressBar``; in a pipe or a log file (CI, ``nohup``) it does nothing, so logs
are not filled with carriage returns.
"""

from __future__ import annotations

import sys
import time

from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar

__all__ = ["IterationProgress"]


class IterationProgress:
    """Attaches a per-epoch tqdm bar showing images/s (and the loss when training), only when stderr is a terminal.

    Args:
        batch_size: images per iteration, for the images/s figure.
        force: attach even without a terminal (for tests).
    """

    def __init__(self, batch_size: int, force: bool = False) -> None:
        self.batch_size = int(batch_size)
        self.force = force
        self._start = 0.0
        self._count = 0

    def attach(self, engine: Engine) -> None:
        if not (self.force or sys.stderr.isatty()):
            return
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        layout = "{desc}[{n_fmt}/{total_fmt}] {percentage:3.0f}%|{bar}|{postfix} [{elapsed}<{remaining}]"
        bar = ProgressBar(persist=False, bar_format=layout)
        bar.attach(engine, output_transform=self._postfix)

    def _epoch_started(self, _: Engine) -> None:
        self._start, self._count = time.perf_counter(), 0

    def _postfix(self, output) -> dict[str, float]:
        self._count += self.batch_size
        first = output[0] if isinstance(output, (list, tuple)) else output
        shown = {"loss": float(first["loss"])} if isinstance(first, dict) and "loss" in first else {}
        shown["img/s"] = round(self._count / max(time.perf_counter() - self._start, 1e-9), 2)
        return shown
