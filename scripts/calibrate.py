"""Chooses each fold's lesion/normal threshold on its validation split, then re-evaluates the test split.

    python scripts/calibrate.py --run runs/busi_cpu_budget [--folds 0,1] [--report True]
        [--operating_point sensitivity|accuracy] [--target_sensitivity 0.95]

For runs trained without ``cross_validate.py --calibrate``. Each fold's temperature (temperature
scaling of the classification logits, fitted on the validation split) and threshold go into
``fold<k>/model.json`` beside its ``model.pt``, where ``evaluate.json`` and ``inference.json`` read
them. The threshold is chosen on the calibrated validation probabilities: by default the highest
that keeps ``--target_sensitivity`` (0.95) of the validation lesion images (the hard CSB gate empties
the mask of every image called normal); ``--operating_point accuracy`` is the highest validation
accuracy, ties nearest 0.5. The test split is evaluated again with them and ``summary.json`` (and
with ``--report`` the report) rewritten. The test split never chooses anything.
"""

from __future__ import annotations

from custom.cli import run as run_command
from custom.cli import whole_numbers
from custom.workflows.crossval import calibrate_run


def main(
    run: str, folds=None, report: bool = True, operating_point: str = "sensitivity", target_sensitivity: float = 0.95
) -> None:
    """Calibrates the folds of ``run`` (default: all of them) and prints the new mean figures."""
    summary = calibrate_run(
        run, whole_numbers(folds, "folds"), operating_point=operating_point, target_sensitivity=target_sensitivity
    )
    mean = summary["mean"]
    print(
        f"mean over folds: accuracy {mean['classification'].get('accuracy')}, Dice {mean['segmentation'].get('dice')}"
    )
    if report:
        from custom.report import build_report

        build_report([run], run)
        print(f"report: {run}/report.md, {run}/report.html")


if __name__ == "__main__":
    run_command(main)
