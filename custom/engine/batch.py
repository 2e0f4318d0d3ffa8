"""One table over an inference batch, and an exit status that says how many of its files failed.

A reviewer of a batch needs one place that lists every input, what became of it and what was found:
``results.csv`` (one row per image, or frame of a multi-frame file), the files that could not be read
included, each with its reason. They do not stop the batch (:func:`custom.data.image_records` turns
them into error records); the process ends with their number as its exit status, so a script that
runs inference knows that something needs a look.

Not exported by :mod:`custom.engine` (configs name ``custom.engine.batch.BatchResults``): it reads the
transforms' metadata helpers, and :mod:`custom.transforms` imports :mod:`custom.engine` through the networks.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Mapping, Sequence

from ignite.engine import Engine, Events
from monai.utils import ImageMetaKey

from custom.fileio import atomic_write_text
from custom.transforms.load import FRAME_KEY
from custom.transforms.outputs import image_spacing, scan_region

__all__ = ["BatchResults", "RESULT_COLUMNS"]

logger = logging.getLogger("nunet")

RESULT_COLUMNS = (
    "file",
    "frame",
    "status",
    "class",
    "lesion_probability",
    "area_mm2",
    "longest_diameter_mm",
    "perpendicular_diameter_mm",
    "scan_region",
    "warnings",
)
_MILLIMETRES = ("area_mm2", "longest_diameter_mm", "perpendicular_diameter_mm")
# exit statuses are one byte; 1 also means "stopped by an error", which a batch with one failed file reads alike
_MOST_STATUS = 255


class BatchResults:
    """Collects one row per inferred image and writes ``<output_dir>/results.csv`` with the failed files.

    Attach it to the inference evaluator (``handlers``), run the evaluator, then call :meth:`finish`.

    Args:
        output_dir: the folder of the outputs.
        records: every record of the batch, those with an ``error`` (unreadable files) included.
    """

    def __init__(self, output_dir: str, records: Sequence[Mapping]) -> None:
        self.output_dir = output_dir
        self.records = list(records)
        self.rows: dict[tuple[str, int | None], dict] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)

    def _collect(self, engine: Engine) -> None:
        for out in engine.state.output:
            meta = out["image"].meta
            frame = meta.get(FRAME_KEY)
            source = str(meta[ImageMetaKey.FILENAME_OR_OBJ])
            self.rows[(os.path.abspath(source), None if frame is None else int(frame))] = self.row(out)

    @staticmethod
    def row(out: Mapping) -> dict:
        """The ``results.csv`` row of one inferred image (its decollated output)."""
        result = out.get("result", {})
        measured = result.get("lesion_measurements", {})
        region = scan_region(out)
        warnings = []
        if image_spacing(out) is None:
            warnings.append("pixel spacing unknown: sizes in pixels only (see the JSON)")
        if region is not None and region["source"] == "found":
            warnings.append("scan region found in the pixels (no DICOM region): check the crop box")
        if result.get("predicted_class", "normal") != "normal" and not result.get("lesion_pixels", 1):
            warnings.append("classified as a lesion with an empty mask")
        probability = result.get("lesion_probability")
        return {
            "status": "ok",
            "class": result.get("predicted_class", ""),
            "lesion_probability": "" if probability is None else f"{probability:.4f}",
            **{k: "" if measured.get(k) is None else f"{measured[k]:.2f}" for k in _MILLIMETRES},
            "scan_region": "" if region is None else " ".join(str(v) for v in region["box"]),
            "warnings": "; ".join(warnings),
        }

    def finish(self) -> int:
        """Writes ``results.csv`` (in the order of the records), logs the count, and ends the process with the
        number of failed files as its status when there are any; returns 0 otherwise."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        failed = 0
        for record in self.records:
            frame = record.get(FRAME_KEY)
            where = {"file": record["image"], "frame": "" if frame is None else frame}
            if "error" in record:
                failed += 1
                writer.writerow({**where, "status": "failed", "warnings": record["error"]})
                continue
            row = self.rows.get((os.path.abspath(record["image"]), frame))
            writer.writerow({**where, **(row or {"status": "failed", "warnings": "no result (the run stopped)"})})
            failed += row is None
        path = os.path.join(self.output_dir, "results.csv")
        atomic_write_text(path, buffer.getvalue())
        if failed:
            logger.error(
                "%d of %d inputs failed (listed in %s); the others were inferred", failed, len(self.records), path
            )
            raise SystemExit(min(failed, _MOST_STATUS))
        logger.info("%d inputs inferred: %s", len(self.records), path)
        return 0
