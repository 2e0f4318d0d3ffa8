"""Cross-validation through the bundle: for each fold, train, select on validation, evaluate on test, summarise.

Stage of the pipeline (after ``scripts/prepare_data.py``): input a prepared folder with
``fold<k>.json``; output ``<out>/fold<k>/`` (the bundle's ``output_dir`` of that fold: ``model.pt``
chosen on the fold's validation split only, ``train_log.jsonl``, ``metrics.json``,
``per_image.csv``), ``<out>/run.json`` (what was run) and ``<out>/summary.json`` (every metric per
fold, mean and std over folds, and pooled over all test images with bootstrap CIs).

Each step is a ``python -m monai.bundle run`` subprocess, exactly what a user would type, so the
cross-validation exercises the same configs as single runs. A fold whose ``metrics.json`` and
``per_image.csv`` exist is skipped, so re-running an interrupted cross-validation continues where it
stopped; ``resume=True`` also continues the interrupted fold's training from its last checkpoint.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from custom.checkpoints import latest_checkpoint, write_card
from custom.data.sizes import size_thresholds, size_tier
from custom.errors import InputError
from custom.evaluation import aggregate_folds, read_per_image, summarize
from custom.fileio import atomic_write_json, check_outside, read_json
from custom.paths import TRAIN_CONFIG
from custom.provenance import file_sha256, provenance
from custom.workflows.bundle_command import config_arg, override_args, run_bundle

DEFAULT_CONFIG = TRAIN_CONFIG

# "paper": the N-Unet paper's protocol, folds drawn image by image (BUSI's near-duplicates may then sit
# on both sides of a split) and full precision; "duplicate-aware": the folds the data was prepared
# with, duplicate groups and patients kept whole, and the config's own precision settings
PROTOCOLS = ("duplicate-aware", "paper")


DEFAULT_OPERATING_POINT = {"operating_point": "sensitivity", "target_sensitivity": 0.95}


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


def _fold_ids(data: Path, folds: Sequence[int] | None) -> list[int]:
    available = sorted(int(p.stem[4:]) for p in data.glob("fold*.json") if p.stem[4:].isdigit())
    if not available:
        raise InputError(f"{data}: no fold<k>.json; prepare the dataset with scripts/prepare_data.py.")
    chosen = list(available if folds is None else folds)
    missing = [k for k in chosen if k not in available]
    if missing:
        raise InputError(f"{data}: no fold{missing[0]}.json (available folds: {available}).")
    return chosen


def _training_thresholds(fold_file: Path) -> tuple[float, float] | None:
    """Lesion-size thresholds (N-Unet paper, 4.1) from the fold's training split only, for the test breakdown."""
    training = json.loads(fold_file.read_text())["training"]
    areas = [r["lesion_area"] for r in training if r.get("lesion") and "lesion_area" in r]
    return size_thresholds(areas) if areas else None


class _Progress:
    """Prints the bundle's per-epoch lines prefixed with the fold, and an ETA over the folds.

    Folds running in parallel report from their own threads; the lock keeps the counts consistent.
    """

    def __init__(self, folds: Sequence[int], log: Callable[[str], None]) -> None:
        self.folds = list(folds)
        self.log = log
        self.start = time.perf_counter()
        self.done = 0
        self.finished = 0
        self.lock = threading.Lock()

    def line(self, fold: int, text: str) -> None:
        if " - nunet - " in text or text.startswith("error:"):
            self.log(f"[fold {fold} | {self.folds.index(fold) + 1}/{len(self.folds)}] {text.split(' - INFO - ')[-1]}")

    def fold_finished(self, fold: int, trained: bool) -> None:
        with self.lock:
            self.done += trained
            self.finished += 1
            left = len(self.folds) - self.finished
            elapsed = time.perf_counter() - self.start
            eta = f", about {elapsed / self.done * left / 60:.1f} min left" if self.done and left else ""
            self.log(f"[fold {fold}] finished ({elapsed / 60:.1f} min elapsed{eta})")


def calibrate_fold(
    fold_dir: Path,
    data_dir: Path,
    fold: int,
    configs: Sequence[str],
    overrides: Mapping[str, Any],
    on_line: Callable[[str], None],
    operating_point: str = "sensitivity",
    target_sensitivity: float = 0.95,
) -> dict[str, Any]:
    """Calibrates the fold on its validation split and records the result in the model card.

    Evaluates ``<fold_dir>/model.pt`` on the validation split into ``<fold_dir>/validation/`` (network
    probabilities: temperature 1, argmax), fits the temperature of the classification logits
    (:func:`custom.evaluation.calibration.fit_temperature`), then chooses the lesion/normal threshold
    on the calibrated probabilities for ``operating_point`` (:func:`~custom.evaluation.calibration.choose_lesion_threshold`:
    by default the highest keeping ``target_sensitivity`` of the lesion images). Writes
    ``<fold_dir>/model.json`` (temperature, threshold, input size, the validation figures, the
    weights' SHA-256), which ``evaluate.json`` and ``inference.json`` read. The test split is not looked at.
    """
    from custom.configs import bundle_parser
    from custom.evaluation.calibration import calibrated_lesion_probability, choose_lesion_threshold, fit_temperature

    choose_lesion_threshold([1], [0.5], operating_point, target_sensitivity)  # the options, before the evaluation
    evaluate = str(Path(configs[0]).parent / "evaluate.json")
    validation_dir = fold_dir / "validation"
    settings = {**overrides, "dataset_dir": str(data_dir), "fold": fold, "output_dir": str(validation_dir)}
    settings.update(
        ckpt_path=str(fold_dir / "model.pt"), val_split="validation", lesion_threshold=None, temperature=1.0
    )
    args = ["evaluating", "--config_file", config_arg([*configs, evaluate]), *override_args(settings)]
    run_bundle(args, fold_dir / "bundle.log", on_line)
    rows = read_per_image(str(validation_dir / "per_image.csv"))
    truth = [int(r["lesion"]) for r in rows]
    names = [k for k in rows[0] if k.startswith("prob_")]  # in class order, normal first (custom.transforms.labels)
    class_prob = np.array([[float(r[k]) for k in names] for r in rows])
    scaling = fit_temperature(truth, class_prob)
    prob = calibrated_lesion_probability(class_prob, scaling["temperature"])
    choice = choose_lesion_threshold(truth, prob, operating_point, target_sensitivity)
    parser = bundle_parser(configs, {**overrides, "dataset_dir": str(data_dir), "fold": fold})
    card = {
        "network": parser["network_def"].get("name"),
        "spatial_size": [int(s) for s in parser.get_parsed_content("spatial_size")],
        "lesion_threshold": choice["threshold"],
        "temperature": scaling["temperature"],
        "calibration": {
            **choice,
            "brier": scaling["brier_after"],
            "ece": scaling["ece_after"],
            "temperature_scaling": scaling,
        },
    }
    return write_card(fold_dir / "model.pt", card)


def _calibration_line(fold: int, card: Mapping[str, Any]) -> str:
    c = card["calibration"]
    return (
        f"[fold {fold}] temperature {card['temperature']:.3f} (validation ECE {c['temperature_scaling']['ece_before']:.3f}"
        f" -> {c['ece']:.3f}), lesion threshold {card['lesion_threshold']:.3f} ({c['rule']}: validation sensitivity "
        f"{c['sensitivity']:.3f}, specificity {c['specificity']:.3f}, accuracy {c['accuracy']:.3f})"
    )


def cross_validate(
    data: str,
    out: str,
    folds: Sequence[int] | None = None,
    config: str | Sequence[str] = DEFAULT_CONFIG,
    resume: bool = False,
    overrides: Mapping[str, Any] | None = None,
    parallel: int = 1,
    log: Callable[[str], None] = print,
    calibrate: bool = False,
    protocol: str = "duplicate-aware",
    operating_point: str = "sensitivity",
    target_sensitivity: float = 0.95,
) -> dict:
    """Runs (or continues) a cross-validation and returns its summary (also written to ``<out>/summary.json``).

    Args:
        data: prepared dataset folder with ``fold<k>.json``.
        out: run folder.
        folds: fold indices (default: every ``fold<k>.json`` in ``data``).
        config: the training config, or a list of configs merged in order (e.g. train.json + a peer's override);
            ``evaluate.json`` from the first config's folder is appended for the evaluation.
        resume: continue an interrupted fold from its last checkpoint instead of restarting it.
        overrides: bundle keys to override (``epochs``, ``csb_mode``, ...), the same for every fold.
        parallel: folds trained at the same time, each in its own process on the same device.
        calibrate: fit each fold's temperature and choose its lesion/normal threshold on its validation
            split before the test evaluation (:func:`calibrate_fold`); off, the decision is the paper's argmax.
        operating_point / target_sensitivity: the threshold's rule with ``calibrate``
            (:func:`custom.evaluation.calibration.choose_lesion_threshold`).
        protocol: ``"duplicate-aware"`` (the data's grouped folds) or ``"paper"`` (folds image by image,
            float32); see :data:`PROTOCOLS`. Recorded in run.json and summary.json.
    """
    data_dir, out_dir = Path(data).resolve(), Path(out).resolve()
    if not data_dir.is_dir():
        raise InputError(f"--data {data!r} is not a folder; prepare one with scripts/prepare_data.py.")
    check_outside(out_dir, [data_dir])
    configs = [str(Path(c).resolve()) for c in ([config] if isinstance(config, str) else config)]
    for c in configs:
        if not Path(c).is_file():
            raise InputError(f"--config: {c!r} does not exist.")
    evaluate = str(Path(configs[0]).parent / "evaluate.json")
    chosen = _fold_ids(data_dir, folds)
    protocol_record, protocol_overrides = protocol_settings(protocol, data_dir)
    overrides = {**protocol_overrides, **dict(overrides or {})}
    settings = {"data": str(data_dir), "config_files": configs, "overrides": overrides}
    # recorded only when not the default, so runs from before these options still resume
    operating = {"operating_point": operating_point, "target_sensitivity": target_sensitivity}
    if calibrate:
        settings["calibrate"] = True
        settings.update({k: v for k, v in operating.items() if v != DEFAULT_OPERATING_POINT[k]})
    if protocol != PROTOCOLS[0]:
        settings["protocol"] = protocol

    run_file = out_dir / "run.json"
    # a re-prepared dataset has other folds: results kept from the old ones would be scored on images
    # that are now training images, so the fold files are compared too (runs before this record none)
    datalists = {str(k): file_sha256(data_dir / f"fold{k}.json") for k in chosen}
    previous: dict[str, Any] = {}
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if {k: previous.get(k) for k in settings} != settings:
            raise InputError(f"{out_dir} holds a run with other settings ({run_file}); choose another --out.")
        changed = [k for k, sha in (previous.get("datalists") or {}).items() if datalists.get(k) not in (None, sha)]
        if changed:
            raise InputError(
                f"{data_dir / f'fold{changed[0]}.json'}: changed since {out_dir} was run (the dataset was prepared "
                "again); choose another --out."
            )
    produced_by = provenance("cross_validate", settings, created=True)
    record = {"name": out_dir.name, **settings, "folds": chosen, "produced_by": produced_by}
    record["datalists"] = {**(previous.get("datalists") or {}), **datalists}
    atomic_write_json(run_file, record)

    progress = _Progress(chosen, log)

    def run_fold(k: int) -> None:
        fold_dir = out_dir / f"fold{k}"
        finished = (fold_dir / "metrics.json").is_file() and (fold_dir / "per_image.csv").is_file()
        if finished:
            log(f"[fold {k}] already evaluated, skipped")
        else:
            common = override_args({**overrides, "dataset_dir": str(data_dir), "fold": k, "output_dir": str(fold_dir)})
            continuing = resume and latest_checkpoint(str(fold_dir)) is not None
            if not continuing and fold_dir.exists():
                shutil.rmtree(fold_dir)  # a fold without results is restarted from scratch
            train_args = ["training", "--config_file", config_arg(configs), *common]
            if continuing:
                train_args += ["--resume", "True"]
            run_bundle(train_args, fold_dir / "bundle.log", lambda t: progress.line(k, t))
            if calibrate:
                card = calibrate_fold(
                    fold_dir, data_dir, k, configs, overrides, lambda t: progress.line(k, t), **operating
                )
                log(_calibration_line(k, card))
            eval_args = ["evaluating", "--config_file", config_arg([*configs, evaluate]), *common]
            run_bundle(eval_args, fold_dir / "bundle.log", lambda t: progress.line(k, t))
        progress.fold_finished(k, trained=not finished)

    # folds are independent processes: with parallel > 1 several share the device (one N-Unet at
    # batch 6 leaves a large GPU mostly idle); the first failure is raised once the others finish
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for future in [pool.submit(run_fold, k) for k in chosen]:
            future.result()
    return summarize_run(data_dir, out_dir, chosen, protocol_record)


def calibrate_run(
    out: str,
    folds: Sequence[int] | None = None,
    log: Callable[[str], None] = print,
    operating_point: str = "sensitivity",
    target_sensitivity: float = 0.95,
) -> dict:
    """Calibrates the trained folds of an existing run, re-evaluates their test splits and re-summarises it.

    For runs trained without ``calibrate`` (or calibrated again, e.g. for another operating point):
    each fold's temperature and threshold are chosen on its validation split (:func:`calibrate_fold`),
    then its test split is evaluated again with them. A fold whose training has not finished (no
    ``metrics.json``; an interrupted run keeps its best ``model.pt`` so far) is refused. ``run.json``
    records the stage (``"calibrate": "after training"``) and the options; returns the new summary.
    """
    out_dir = Path(out).resolve()
    run_file = out_dir / "run.json"
    run = read_json(run_file, "not a run folder: run scripts/cross_validate.py first")
    if not {"data", "config_files", "folds"} <= set(run):
        raise InputError(f"{run_file}: lacks data, config_files or folds; it was not written by cross_validate.py")
    data_dir, configs, overrides = Path(run["data"]), run["config_files"], run.get("overrides", {})
    chosen = list(folds if folds is not None else run["folds"])
    evaluate = str(Path(configs[0]).parent / "evaluate.json")
    for k in chosen:  # every fold checked before any is calibrated
        fold_dir = out_dir / f"fold{k}"
        if not (fold_dir / "model.pt").is_file():
            raise InputError(f"{fold_dir}: no model.pt; train the fold first (scripts/cross_validate.py --resume).")
        if not (fold_dir / "metrics.json").is_file():  # written once the fold's training ran to its end
            raise InputError(
                f"{fold_dir}: fold {k} has not finished (no metrics.json: its training was interrupted), so its "
                f"model.pt is a half-trained network; finish it first: scripts/cross_validate.py --out {out_dir} "
                "--resume True and the options it was started with."
            )
    for k in chosen:
        fold_dir = out_dir / f"fold{k}"
        card = calibrate_fold(
            fold_dir, data_dir, k, configs, overrides, lambda t: None, operating_point, target_sensitivity
        )
        log(_calibration_line(k, card))
        common = override_args({**overrides, "dataset_dir": str(data_dir), "fold": k, "output_dir": str(fold_dir)})
        eval_args = ["evaluating", "--config_file", config_arg([*configs, evaluate]), *common]
        run_bundle(eval_args, fold_dir / "bundle.log", lambda t: None)
    run["calibrate"] = "after training"
    options = {"operating_point": operating_point, "target_sensitivity": target_sensitivity}
    run["calibrated_by"] = provenance("calibrate_run", {"out": str(out_dir), "folds": chosen, **options}, created=True)
    atomic_write_json(run_file, run)
    protocol_record, _ = protocol_settings(run.get("protocol", PROTOCOLS[0]), data_dir)
    return summarize_run(data_dir, out_dir, run["folds"], protocol_record)


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
