"""A cross-validation run's protocol and summary: what the folds keep together, the figures over folds, the report.

Shared by :mod:`custom.workflows.crossval` (which runs the folds) and :mod:`custom.workflows.calibrate`
(which calibrates a finished run again): ``<out>/summary.json`` is written from the folds'
``per_image.csv`` files here, under the protocol record of :func:`protocol_settings`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from custom.data.sizes import size_thresholds, size_tier
from custom.errors import InputError
from custom.evaluation import aggregate_folds, read_per_image, summarize
from custom.fileio import atomic_write_json
from custom.provenance import provenance

__all__ = ["PROTOCOLS", "data_grouping", "print_mean", "protocol_settings", "summarize_run", "write_report"]

# "paper": the N-Unet paper's protocol, folds drawn image by image (BUSI's near-duplicates may then sit
# on both sides of a split) and full precision; "duplicate-aware": the folds the data was prepared
# with, duplicate groups and patients kept whole, and the config's own precision settings
PROTOCOLS = ("duplicate-aware", "paper")


def data_grouping(data_dir: Path) -> list[str]:
    """What the prepared folds keep together (``"duplicates"``, ``"patient"``), from its summary.json."""
    summary_file = data_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    if "grouping" in summary:
        return list(summary["grouping"]["by"])
    return ["duplicates"] if summary.get("duplicates") else []  # prepared before the grouping was recorded


def protocol_settings(protocol: str, data_dir: Path) -> tuple[dict, dict]:
    """The protocol's record for summary.json, and the bundle overrides it implies.

    Raises:
        InputError: for an unknown protocol, or ``paper`` on folds that keep groups together.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"--protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}.")
    grouping = data_grouping(data_dir)
    if protocol == "paper" and grouping:
        raise InputError(
            f"--protocol paper splits image by image, but {data_dir} keeps {' and '.join(grouping)} together; "
            "prepare the data again with --dedup none (and --patients False for BUS-UCLM)."
        )
    record = {
        "name": protocol,
        "folds": "grouped by " + " and ".join(grouping) if grouping else "image by image",  # as prepared
        "precision": "float32" if protocol == "paper" else "as configured (amp)",
    }
    return record, ({"amp": False} if protocol == "paper" else {})


def _training_thresholds(fold_file: Path) -> tuple[float, float] | None:
    """Lesion-size thresholds (N-Unet paper, 4.1) from the fold's training split only, for the test breakdown."""
    training = json.loads(fold_file.read_text())["training"]
    areas = [r["lesion_area"] for r in training if r.get("lesion") and "lesion_area" in r]
    return size_thresholds(areas) if areas else None


def summarize_run(data_dir: Path, out_dir: Path, folds: Sequence[int], protocol: Mapping | None = None) -> dict:
    """Summarises the evaluated folds of a run into ``<out_dir>/summary.json`` and returns it.

    ``protocol``: the record of :func:`protocol_settings`, stored under ``protocol`` (default: the
    duplicate-aware protocol on ``data_dir``'s folds).

    Each fold is summarised from its ``per_image.csv`` with lesion-size tiers set by thresholds from
    that fold's training split; the pooled summary (all test images, bootstrap CIs) keeps each
    image's own fold tier.
    """
    fold_summaries, pooled_rows = {}, []
    for k in folds:
        rows = read_per_image(str(out_dir / f"fold{k}" / "per_image.csv"))
        thresholds = _training_thresholds(data_dir / f"fold{k}.json")
        fold_summaries[k] = summarize(rows, size_thresholds=thresholds)
        for row in rows:
            if thresholds is not None and "lesion_area" in row:
                row["size_tier"] = size_tier(int(row["lesion_area"]), int(row["lesion"]), *thresholds)
            pooled_rows.append({**row, "fold": k})
    pooled = summarize(pooled_rows)
    summary = {
        "protocol": dict(protocol) if protocol is not None else protocol_settings(PROTOCOLS[0], data_dir)[0],
        "folds": {str(k): s for k, s in fold_summaries.items()},
        **aggregate_folds(list(fold_summaries.values())),
        "pooled": pooled,
        "conventions": pooled["conventions"],
        "produced_by": provenance(
            "cross_validate", {"data": str(data_dir), "out": str(out_dir), "folds": list(folds)}, created=True
        ),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def print_mean(summary: Mapping[str, Any]) -> None:
    """Prints the run's mean figures over its folds in one line."""
    mean = summary["mean"]
    cls, seg = mean.get("classification", {}), mean.get("segmentation", {})
    print(
        f"mean over folds: accuracy {cls.get('accuracy')}, AUC {cls.get('auc')}, Dice {seg.get('dice')}, IoU {seg.get('iou')}"
    )


def write_report(out: str) -> None:
    """Writes the report of the run ``out`` into it (``report.md``, ``report.html``) and says where."""
    from custom.report import build_report  # matplotlib and the report only when asked for

    build_report([out], out)
    print(f"report: {out}/report.md, {out}/report.html")
