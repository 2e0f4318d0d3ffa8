"""A progress bar of the iterations of an epoch (training) or of a pass (inference), with images per second, on a terminal.

On a CPU an epoch of N-Unet takes minutes; the one-line-per-epoch log of
:class:`custom.engine.TrainingLog` (with its ETA) stays the record, and this bar shows life in between.
It uses ignite's tqdm ``ProgressBar``; in a pipe or a log file (CI, ``nohup``) there is no bar, so logs
are not filled with carriage returns: with ``log_every`` a line every that many iterations says how far
the pass is instead (evaluating the released model on BUSI takes minutes and printed nothing meanwhile).

:class:`InferenceSummary` ends an inference with one line: images read, skipped, with a lesion, and where
the outputs are.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sized
from typing import Any

from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar

__all__ = ["InferenceSummary", "IterationProgress"]

logger = logging.getLogger("nunet")


class IterationProgress:
    """Attaches a per-epoch tqdm bar showing images/s (and the loss when training), only when stderr is a terminal.

    Args:
        batch_size: images per iteration, for the images/s figure.
        force: attach the bar even without a terminal (for tests).
        log_every: without a terminal, log a line every that many iterations (0: none).
    """

    def __init__(self, batch_size: int, force: bool = False, log_every: int = 0) -> None:
        self.batch_size = int(batch_size)
        self.force = force
        self.log_every = int(log_every)
        self._start = 0.0
        self._count = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        if not (self.force or sys.stderr.isatty()):
            if self.log_every > 0:
                engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.log_every), self._log_line)
            return
        layout = "{desc}[{n_fmt}/{total_fmt}] {percentage:3.0f}%|{bar}|{postfix} [{elapsed}<{remaining}]"
        bar = ProgressBar(persist=False, bar_format=layout)
        bar.attach(engine, output_transform=self._postfix)

    def _epoch_started(self, _: Engine) -> None:
        self._start, self._count = time.perf_counter(), 0

    def _log_line(self, engine: Engine) -> None:
        done = engine.state.iteration - (engine.state.epoch - 1) * engine.state.epoch_length
        rate = done * self.batch_size / max(time.perf_counter() - self._start, 1e-9)
        logger.info("%d/%s iterations, %.2f images/s", done, engine.state.epoch_length, rate)

    def _postfix(self, output) -> dict[str, float]:
        self._count += self.batch_size
        first = output[0] if isinstance(output, (list, tuple)) else output
        shown = {"loss": float(first["loss"])} if isinstance(first, dict) and "loss" in first else {}
        shown["img/s"] = round(self._count / max(time.perf_counter() - self._start, 1e-9), 2)
        return shown


class InferenceSummary:
    """Logs one line when inference ends: images read, skipped, with a lesion decision, and the output folder.

    Args:
        output_dir: where the masks and JSON files went.
        records: the inference records (one per image or frame), to count those that gave no result.
    """

    def __init__(self, output_dir: str, records: Sized) -> None:
        self.output_dir = output_dir
        self.records = records
        self.images = self.lesions = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._count)
        engine.add_event_handler(Events.COMPLETED, self._report)

    def _count(self, engine: Engine) -> None:
        output: Any = engine.state.output
        for item in output if isinstance(output, (list, tuple)) else [output]:
            result = item.get("result", {}) if isinstance(item, dict) else {}
            self.images += 1
            self.lesions += result.get("predicted_class", "normal") != "normal"

    def _report(self, _: Engine) -> None:
        skipped = len(self.records) - self.images
        logger.info(
            "inference: %d images read, %d skipped, %d with a lesion found; masks and JSON files in %s",
            self.images,
            skipped,
            self.lesions,
            self.output_dir,
        )
