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

from custom.checkpoints import latest_checkpoint
from custom.cli import run as run_command
from custom.cli import whole_numbers
from custom.errors import InputError
from custom.fileio import atomic_write_json, check_outside
from custom.paths import TRAIN_CONFIG
from custom.provenance import file_sha256, provenance
from custom.workflows.bundle_command import config_arg, override_args, run_bundle
from custom.workflows.calibrate import calibrate_fold, calibration_line
from custom.workflows.run_summary import PROTOCOLS, print_mean, protocol_settings, summarize_run, write_report

DEFAULT_CONFIG = TRAIN_CONFIG

DEFAULT_OPERATING_POINT = {"operating_point": "sensitivity", "target_sensitivity": 0.95}


def _fold_ids(data: Path, folds: Sequence[int] | None) -> list[int]:
    available = sorted(int(p.stem[4:]) for p in data.glob("fold*.json") if p.stem[4:].isdigit())
    if not available:
        raise InputError(f"{data}: no fold<k>.json; prepare the dataset with scripts/prepare_data.py.")
    chosen = list(available if folds is None else folds)
    missing = [k for k in chosen if k not in available]
    if missing:
        raise InputError(f"{data}: no fold{missing[0]}.json (available folds: {available}).")
    return chosen


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
                log(calibration_line(k, card))
            eval_args = ["evaluating", "--config_file", config_arg([*configs, evaluate]), *common]
            run_bundle(eval_args, fold_dir / "bundle.log", lambda t: progress.line(k, t))
        progress.fold_finished(k, trained=not finished)

    # folds are independent processes: with parallel > 1 several share the device (one N-Unet at
    # batch 6 leaves a large GPU mostly idle); the first failure is raised once the others finish
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for future in [pool.submit(run_fold, k) for k in chosen]:
            future.result()
    return summarize_run(data_dir, out_dir, chosen, protocol_record)


def cross_validate_command(
    data: str,
    out: str,
    folds: Any = None,
    config: Any = DEFAULT_CONFIG,
    resume: bool = False,
    report: bool = True,
    parallel: int = 1,
    calibrate: bool = False,
    protocol: str = "duplicate-aware",
    operating_point: str = "sensitivity",
    target_sensitivity: float = 0.95,
    **overrides: Any,
) -> None:
    """Cross-validation of a bundle config on a prepared dataset, then the report.

    ``python scripts/cross_validate.py --data <prepared dir> --out runs/<name> [--folds 0,1,2,3,4]
    [--config bundle/configs/train.json] [--resume] [--parallel 2] [--calibrate] [--protocol paper]
    [--operating_point sensitivity|accuracy] [--target_sensitivity 0.95] [any bundle override, e.g. --epochs 800]``

    ``--parallel N`` trains N folds at the same time, each in its own process on the same device.
    ``--calibrate`` fits each fold's temperature and chooses its lesion/normal threshold on its validation
    split before the test evaluation (``scripts/calibrate.py`` does it for a run trained without it).
    ``--protocol paper`` is the N-Unet paper's protocol: folds drawn image by image (data prepared with
    ``--dedup none``) and float32; the default ``duplicate-aware`` uses the data's grouped folds.

    Each fold: train (checkpoint chosen on the fold's validation split), evaluate the test split, write
    ``<out>/fold<k>/metrics.json`` and ``per_image.csv``. Then ``<out>/summary.json`` (mean and std over
    folds) and, with ``report``, the report (``report.md``, ``report.html``). Finished folds are skipped on re-runs.
    """
    summary = cross_validate(
        data,
        out,
        folds=whole_numbers(folds, "folds"),
        config=config,
        resume=resume,
        overrides=overrides,
        parallel=parallel,
        calibrate=calibrate,
        protocol=protocol,
        operating_point=operating_point,
        target_sensitivity=target_sensitivity,
    )
    print_mean(summary)
    if report:
        write_report(out)


def main() -> None:
    """``nunet-cross-validate`` and ``scripts/cross_validate.py``: :func:`cross_validate_command` as a command."""
    run_command(cross_validate_command)
