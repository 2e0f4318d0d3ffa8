"""Cross-validation of a bundle config on a prepared dataset, then the report.

    python scripts/cross_validate.py --data <prepared dir> --out runs/<name> [--folds 0,1,2,3,4]
        [--config bundle/configs/train.json] [--resume] [--parallel 2] [--calibrate] [--protocol paper]
        [--operating_point sensitivity|accuracy] [--target_sensitivity 0.95]
        [any bundle override, e.g. --epochs 800]

``--parallel N`` trains N folds at the same time, each in its own process on the same device.
``--calibrate`` fits each fold's temperature and chooses its lesion/normal threshold on its validation
split before the test evaluation (``scripts/calibrate.py`` does it for a run trained without it);
``--operating_point``/``--target_sensitivity`` choose the threshold's rule (see ``scripts/calibrate.py``).
``--protocol paper`` is the N-Unet paper's protocol: folds drawn image by image (data prepared with
``--dedup none``) and float32; the default ``duplicate-aware`` uses the data's grouped folds. The
protocol is recorded in ``summary.json`` and printed at the top of the report.

Each fold: train (checkpoint chosen on the fold's validation split), evaluate the test split, write
``runs/<name>/fold<k>/metrics.json`` and ``per_image.csv``. Then ``runs/<name>/summary.json`` (mean and
std over folds) and the report (``report.md``, ``report.html``). Finished folds are skipped on re-runs.
"""

from __future__ import annotations

from custom.cli import run as run_command
from custom.cli import whole_numbers
from custom.workflows.crossval import DEFAULT_CONFIG, cross_validate


def main(
    data: str,
    out: str,
    folds=None,
    config=DEFAULT_CONFIG,
    resume: bool = False,
    report: bool = True,
    parallel: int = 1,
    calibrate: bool = False,
    protocol: str = "duplicate-aware",
    operating_point: str = "sensitivity",
    target_sensitivity: float = 0.95,
    **overrides,
) -> None:
    """Runs the folds (``parallel`` at a time), writes summary.json and (with ``report``) the report into ``out``."""
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
    mean = summary["mean"]
    cls, seg = mean.get("classification", {}), mean.get("segmentation", {})
    print(
        f"mean over folds: accuracy {cls.get('accuracy')}, AUC {cls.get('auc')}, Dice {seg.get('dice')}, IoU {seg.get('iou')}"
    )
    if report:
        from custom.report import build_report  # matplotlib and the report only when asked for

        build_report([out], out)
        print(f"report: {out}/report.md, {out}/report.html")


if __name__ == "__main__":
    run_command(main)
