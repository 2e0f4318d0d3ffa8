"""What a run does, how far it is and what it gave: its opening line, a progress bar, the closing summary of inference.

:class:`RunHeadline` opens every training, evaluation and inference with one line saying what the run does.

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
from collections.abc import Sequence, Sized
from typing import Any

from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar

__all__ = ["InferenceSummary", "IterationProgress", "RunHeadline"]

logger = logging.getLogger("nunet")


class RunHeadline:
    """Logs what the run does in one line when its engine starts, after the handlers that resume it::

        training NUNet on data/busi/fold0.json (468 images): 45 epochs at 96x96, output in runs/busi_fold0
        evaluating runs/busi_fold0/model.pt on the test split of data/busi/fold0.json (156 images) at 96x96,
            output in runs/busi_fold0
        inferring 42 images from my_images with bundle/models/model.pt at 96x96, output in predictions

    Attach it after the handlers that load or resume the engine's state (last among the training handlers),
    so that a resumed training says where it continues.

    Args:
        task: ``training``, ``evaluating`` or ``inferring``.
        data: the datalist, or the folder of images, the engine reads.
        spatial_size: the network's input size.
        output_dir: where the run writes.
        network: the network trained, named by its class (training).
        weights: the checkpoint, or checkpoints, evaluated or inferred with.
        split: the datalist split read (evaluation, and inference without an input folder).
    """

    def __init__(
        self,
        task: str,
        data: str,
        spatial_size: Sequence[int],
        output_dir: str,
        network: Any = None,
        weights: Any = None,
        split: str | None = None,
    ) -> None:
        if task not in ("training", "evaluating", "inferring"):
            raise ValueError(f"task {task!r}: expected training, evaluating or inferring")
        self.task = task
        self.data = str(data)
        self.size = "x".join(str(int(s)) for s in spatial_size)
        self.output_dir = str(output_dir)
        self.network = type(network).__name__ if network is not None else None
        self.weights = weights
        self.split = split

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda e: logger.info("%s", self.line(e)))

    def line(self, engine: Engine) -> str:
        """The line for ``engine`` as it starts: its data loader gives the number of images."""
        dataset = getattr(getattr(engine, "data_loader", None), "dataset", None)
        images = f"{len(dataset)} images" if isinstance(dataset, Sized) else "images"
        source = f"the {self.split} split of {self.data}" if self.split else self.data
        at = f"at {self.size}, output in {self.output_dir}"
        if self.task == "training":
            epochs = f"{engine.state.max_epochs} epochs"
            if engine.state.epoch:
                epochs += f" (continuing after epoch {engine.state.epoch})"
            return f"training {self.network or 'the network'} on {source} ({images}): {epochs} {at}"
        if self.task == "evaluating":
            return f"evaluating {self.weights} on {source} ({images}) {at}"
        return f"inferring {images} from {source} with {self.weights} {at}"


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
