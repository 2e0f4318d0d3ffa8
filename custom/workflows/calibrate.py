"""Calibration of trained folds on their validation splits: the temperature and lesion/normal threshold of each card.

:func:`calibrate_fold` is used by :func:`custom.workflows.crossval.cross_validate` (``--calibrate``) before a
fold's test evaluation; :func:`calibrate_run` (``scripts/calibrate.py``) calibrates the folds of a run
trained without it, then evaluates their test splits again. The test split never chooses anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from custom.checkpoints import write_card
from custom.cli import run as run_command
from custom.cli import whole_numbers
from custom.configs import recorded_config_files
from custom.errors import InputError
from custom.evaluation import read_per_image
from custom.fileio import atomic_write_json, read_json
from custom.provenance import provenance
from custom.workflows.bundle_command import config_arg, override_args, run_bundle
from custom.workflows.run_summary import PROTOCOLS, print_mean, protocol_settings, summarize_run, write_report

__all__ = ["calibrate_command", "calibrate_fold", "calibrate_run", "calibration_line", "main"]


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
    from custom.evaluation.calibration import (
        calibrated_lesion_probability,
        check_operating_point,
        choose_lesion_threshold,
        fit_temperature,
    )

    check_operating_point(operating_point, target_sensitivity)  # before the evaluation, which takes minutes
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
        # N-Unet's head option, recorded so evaluation and inference build the head the weights have
        "classifier_input": parser.get_parsed_content("network_def#classifier_input", default=None),
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


def calibration_line(fold: int, card: Mapping[str, Any]) -> str:
    """The console line of a calibrated fold: its temperature, threshold and validation figures."""
    c = card["calibration"]
    return (
        f"[fold {fold}] temperature {card['temperature']:.3f} (validation ECE {c['temperature_scaling']['ece_before']:.3f}"
        f" -> {c['ece']:.3f}), lesion threshold {card['lesion_threshold']:.3f} ({c['rule']}: validation sensitivity "
        f"{c['sensitivity']:.3f}, specificity {c['specificity']:.3f}, accuracy {c['accuracy']:.3f})"
    )


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
    data_dir, overrides = Path(run["data"]), run.get("overrides", {})
    configs = recorded_config_files(run["config_files"])
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
        log(calibration_line(k, card))
        common = override_args({**overrides, "dataset_dir": str(data_dir), "fold": k, "output_dir": str(fold_dir)})
        eval_args = ["evaluating", "--config_file", config_arg([*configs, evaluate]), *common]
        run_bundle(eval_args, fold_dir / "bundle.log", lambda t: None)
    run["calibrate"] = "after training"
    options = {"operating_point": operating_point, "target_sensitivity": target_sensitivity}
    run["calibrated_by"] = provenance("calibrate_run", {"out": str(out_dir), "folds": chosen, **options}, created=True)
    atomic_write_json(run_file, run)
    protocol_record, _ = protocol_settings(run.get("protocol", PROTOCOLS[0]), data_dir)
    return summarize_run(data_dir, out_dir, run["folds"], protocol_record)


def calibrate_command(
    run: str,
    folds: Any = None,
    report: bool = True,
    operating_point: str = "sensitivity",
    target_sensitivity: float = 0.95,
) -> None:
    """Chooses each fold's lesion/normal threshold on its validation split, then re-evaluates the test split.

    ``python scripts/calibrate.py --run runs/busi_cpu_budget [--folds 0,1] [--report True]
    [--operating_point sensitivity|accuracy] [--target_sensitivity 0.95]``, for runs trained without
    ``cross_validate.py --calibrate``. Each fold's temperature (temperature scaling of the classification
    logits, fitted on the validation split) and threshold go into ``fold<k>/model.json`` beside its
    ``model.pt``, where ``evaluate.json`` and ``inference.json`` read them. The threshold is chosen on the
    calibrated validation probabilities: by default the highest that keeps ``target_sensitivity`` of the
    validation lesion images (the hard CSB gate empties the mask of every image called normal);
    ``--operating_point accuracy`` is the highest validation accuracy, ties nearest 0.5. The test split is
    evaluated again with them and ``summary.json`` (and with ``report`` the report) rewritten. The test
    split never chooses anything.
    """
    summary = calibrate_run(
        run, whole_numbers(folds, "folds"), operating_point=operating_point, target_sensitivity=target_sensitivity
    )
    print_mean(summary)
    if report:
        write_report(run)


def main() -> None:
    """``nunet-calibrate`` and ``scripts/calibrate.py``: :func:`calibrate_command` on the command line."""
    run_command(calibrate_command)
