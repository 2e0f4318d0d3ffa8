"""Ignite handlers: the training log (progress, ETA, learned task weights), the evaluation writer, and quiet stats."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Sequence

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.handlers import StatsHandler
from monai.metrics import compute_dice

from custom.errors import one_line
from custom.evaluation import (
    MILLIMETRE_METRICS,
    SEGMENTATION_METRICS,
    classification_metrics,
    nanmean,
    segmentation_metrics,
)
from custom.fileio import atomic_write_json, atomic_write_text, to_json_safe
from custom.keys import DecisionKeys

logger = logging.getLogger("nunet")


def _first_output(output) -> dict:
    return output[0] if isinstance(output, (list, tuple)) else output


class TrainingLog:
    """One line per epoch: progress with ETA on the console and a JSON record in ``log_file``.

    Each record holds the epoch, mean training loss, learning rate (after the epoch's scheduler step:
    the rate of the next epoch), the AMTL task weights ``1 / (2 sigma_i^2)`` and ``s_i`` (N-Unet paper,
    eq. 24) and, on validation epochs, the validation metrics. The task weights are also put into
    ``engine.state.metrics`` so that a ``TensorBoardStatsHandler`` attached after this handler plots them.

    Attach it after the ``ValidationHandler`` so the validation of the same epoch is included.

    Args:
        log_file: JSON-lines file (appended, so a resumed run continues it).
        loss: the training loss; its ``task_weights()`` / ``log_vars`` are logged when present.
        validator: the validation evaluator, whose ``state.metrics`` are logged after it ran.
    """

    def __init__(self, log_file: str, loss: torch.nn.Module | None = None, validator: Engine | None = None) -> None:
        self.log_file = log_file
        self.loss = getattr(loss, "module", loss)  # unwrap DistributedDataParallel
        self.validator = validator
        self._losses: list[float] = []
        self._start_time = 0.0
        self._start_epoch = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch)

    def _started(self, engine: Engine) -> None:
        self._start_time = time.perf_counter()
        self._start_epoch = engine.state.epoch
        os.makedirs(os.path.dirname(os.path.abspath(self.log_file)), exist_ok=True)

    def _iteration(self, engine: Engine) -> None:
        self._losses.append(float(_first_output(engine.state.output)["loss"]))

    def _epoch(self, engine: Engine) -> None:
        epoch, max_epochs = engine.state.epoch, engine.state.max_epochs
        record: dict = {"epoch": epoch, "train_loss": sum(self._losses) / max(len(self._losses), 1)}
        self._losses.clear()
        if getattr(engine, "optimizer", None) is not None:
            record["lr"] = engine.optimizer.param_groups[0]["lr"]
        if self.loss is not None and hasattr(self.loss, "task_weights"):
            weights = self.loss.task_weights()
            record.update({f"weight_{k}": v for k, v in weights.items()})
            record.update({f"s_{k}": float(s.detach()) for k, s in getattr(self.loss, "log_vars", {}).items()})
            engine.state.metrics.update({f"amtl_weight_{k}": v for k, v in weights.items()})
        # ValidationHandler runs the validator with the trainer's epoch number on validation epochs
        if self.validator is not None and self.validator.state.epoch == epoch:
            record.update({k: float(v) for k, v in self.validator.state.metrics.items() if _is_number(v)})
        elapsed = time.perf_counter() - self._start_time
        done = epoch - self._start_epoch
        eta = elapsed / done * (max_epochs - epoch) if done else math.nan
        record["elapsed_s"] = round(elapsed, 2)
        with open(self.log_file, "a") as f:
            f.write(json.dumps(to_json_safe(record)) + "\n")  # strict JSON: an undefined AUC is null
        shown = " ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith(("train_loss", "val_")))
        logger.info("epoch %d/%d %s | elapsed %s ETA %s", epoch, max_epochs, shown, _hms(elapsed), _hms(eta))


class QuietStatsHandler(StatsHandler):
    """MONAI's ``StatsHandler``, except that a problem the user can fix is not logged with its traceback.

    ``StatsHandler`` logs every exception of its engine with ``logger.exception`` before re-raising it,
    so a missing checkpoint or a NaN pixel printed a page of tracebacks above the run's one-line
    ``error:`` (:func:`custom.errors.install_excepthook`). Bugs are still logged as before.

    With ``title`` (evaluation, inference: one pass, no epochs), the metrics line reads
    ``<title>: val_dice 0.6620, ...`` instead of ``Epoch[1] Metrics -- ...``, and the engine's own
    training words (``Epoch[1] Complete``, ``Got new best metric``) are not logged.
    """

    def __init__(self, *args, title: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.title = title

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        if self.title is not None:
            self.logger = logger  # the project's, not the engine's, which now logs warnings only:
            engine.logger.setLevel(logging.WARNING)  # ignite's and MONAI's per-epoch INFO lines

    def _default_epoch_print(self, engine: Engine) -> None:
        if self.title is None:
            return super()._default_epoch_print(engine)
        shown = ", ".join(f"{k} {float(v):.4f}" for k, v in engine.state.metrics.items() if _is_number(v))
        if shown:
            self.logger.info("%s: %s", self.title, shown)

    def exception_raised(self, engine: Engine, e: Exception) -> None:
        if one_line(e) is not None and os.environ.get("NUNET_TRACEBACK") != "1":
            raise e
        super().exception_raised(engine, e)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) or (isinstance(value, torch.Tensor) and value.numel() == 1)


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class EvaluationWriter:
    """Collects one row per test image and writes ``metrics.json`` and ``per_image.csv`` at the end.

    ``per_image.csv`` columns: ``id``, ``image``, the record's ``dataset``, ``class_name``, ``size_tier`` and
    ``lesion_area`` when it has them, ``lesion`` (truth), ``target`` / ``pred_class`` (class indices of the model, 0 normal),
    ``lesion_pred``, ``lesion_prob``, ``prob_<class>`` per class (calibrated where a temperature is applied, then
    also ``lesion_prob_uncalibrated``), ``gt_area`` / ``pred_area`` (pixels
    of the compared masks after CSB: each image's original size with ``evaluate.json``, the network's
    input size in validation), the per-image segmentation metrics, and ``dice_ungated``, the Dice of the
    mask before the CSB gate (the gate's share of the lost Dice).

    Reads the post-processed output of :class:`custom.transforms.MultiTaskDecisiond` (CSB-gated
    ``seg_pred``, ``lesion_prob``, ...), computes the per-image segmentation metrics with
    :func:`custom.evaluation.segmentation_metrics` and aggregates them in the paper's convention:
    classification with lesion as positive over all images; segmentation averaged over the images
    whose ground truth has a lesion. Both files are written atomically.

    Args:
        output_dir: where ``metrics.json`` and ``per_image.csv`` go.
        id_key: batch key of the case id (falls back to the image file name).
    """

    def __init__(self, output_dir: str, id_key: str = "id") -> None:
        self.output_dir = output_dir
        self.id_key = id_key
        self.rows: list[dict] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _collect(self, engine: Engine) -> None:
        outputs = engine.state.output
        # MONAI engines decollate the batch into one dict per image alongside the output
        batch = engine.state.batch if isinstance(engine.state.batch, list) else [{}] * len(outputs)
        for out, item in zip(outputs, batch):
            image = out["image"]
            source = str(getattr(image, "meta", {}).get("filename_or_obj", "")) or str(item.get("source", ""))
            case_id = item.get(self.id_key) or os.path.splitext(os.path.basename(source))[0]
            row: dict = {"id": case_id, "image": source}
            # the record's own fields, for breakdowns by class and lesion size (absent for plain folders)
            row.update({k: item[k] for k in ("dataset", "class_name", "size_tier", "lesion_area") if k in item})
            if DecisionKeys.LESION_TRUE in out:  # the truth, whatever heads the network has
                row["lesion"] = int(out[DecisionKeys.LESION_TRUE][0])
                row["target"] = int(out["cls_label_onehot"].argmax())
            classified = DecisionKeys.LESION_TRUE in out and DecisionKeys.LESION_PRED_ONEHOT in out
            if classified:  # and a classifying network's answer
                # the decision after refining where the post-processing refines, else the argmax
                decided = out.get(DecisionKeys.CLS_PRED)
                row["pred_class"] = int(decided) if decided is not None else int(out[DecisionKeys.CLS_PROB].argmax())
                row["lesion_pred"] = int(out[DecisionKeys.LESION_PRED_ONEHOT][1])
                row["lesion_prob"] = float(out[DecisionKeys.LESION_PROB][0])
                row.update({f"prob_{name}": float(p) for name, p in out["result"]["class_probabilities"].items()})
                if "lesion_probability_uncalibrated" in out["result"]:  # a temperature applied: the report's "before"
                    row["lesion_prob_uncalibrated"] = out["result"]["lesion_probability_uncalibrated"]
            if DecisionKeys.SEG_LABEL in out and DecisionKeys.SEG_PRED in out:  # a mask to compare, a segmenting net
                pred, gt = out[DecisionKeys.SEG_PRED][None], out[DecisionKeys.SEG_LABEL][None]
                row["gt_area"] = int(gt.sum())
                row["pred_area"] = int(pred.sum())
                # millimetres only where the record gives the pixel spacing (row, column), e.g. from DICOM
                spacing = [float(v) for v in item["spacing"]] if item.get("spacing") is not None else None
                row.update({k: float(v[0]) for k, v in segmentation_metrics(pred, gt, spacing).items()})
                if DecisionKeys.SEG_PRED_UNGATED in out:  # the same mask before the CSB gate
                    ungated = out[DecisionKeys.SEG_PRED_UNGATED][None]
                    row["dice_ungated"] = float(
                        compute_dice(ungated, gt, include_background=True, ignore_empty=True)[0, 0]
                    )
            self.rows.append(row)

    def summary(self) -> dict:
        """The aggregated metrics of the collected rows (the content of ``metrics.json``)."""
        metrics: dict = {"n_images": len(self.rows)}
        if self.rows and "lesion_pred" in self.rows[0]:
            metrics["classification"] = classification_metrics(
                [r["lesion"] for r in self.rows],
                [r["lesion_pred"] for r in self.rows],
                [r["lesion_prob"] for r in self.rows],
            )
        if self.rows and "dice" in self.rows[0]:
            lesion_rows = [r for r in self.rows if r["gt_area"] > 0]
            names = [*SEGMENTATION_METRICS, *(m for m in MILLIMETRE_METRICS if any(m in r for r in lesion_rows))]
            metrics["segmentation"] = {k: nanmean([r.get(k, math.nan) for r in lesion_rows]) for k in names}
            metrics["n_lesion_images"] = len(lesion_rows)
        metrics["convention"] = (
            "classification: lesion (benign or malignant) = positive, all images; "
            "segmentation: per image after CSB, averaged over lesion-containing images (N-Unet), "
            "at the size of the compared masks (each image's original size with evaluate.json); "
            "hd95 and asd in pixels of those masks, a missed lesion scoring the image diagonal"
        )
        return metrics

    def _write(self, engine: Engine) -> None:
        atomic_write_json(os.path.join(self.output_dir, "metrics.json"), self.summary())
        atomic_write_text(os.path.join(self.output_dir, "per_image.csv"), _to_csv(self.rows))
        logger.info("evaluation of %d images written to %s", len(self.rows), self.output_dir)


def _to_csv(rows: Sequence[dict]) -> str:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
