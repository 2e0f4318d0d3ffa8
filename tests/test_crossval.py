"""Cross-validation through the bundle on the demo data: 2 folds x 1 epoch on CPU, then the report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import TINY_RUN, run_script

from custom.evaluation.calibration import calibrated_lesion_probability
from custom.workflows.bundle_command import override_args


def _cross_validate(data, out, *extra):
    # the driver in this process; its folds' bundle runs are real subprocesses (in parallel here)
    proc = run_script(
        "cross_validate.py",
        "--data",
        str(data),
        "--out",
        str(out),
        "--folds",
        "0,1",
        "--epochs",
        "1",
        *TINY_RUN,
        *extra,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_override_args_round_trip_through_the_bundle_parser():
    assert override_args({"epochs": 2, "resume": False, "spatial_size": [32, 32], "csb_mode": "soft"}) == [
        "--epochs",
        "2",
        "--resume",
        "False",
        "--spatial_size",
        "[32,32]",
        "--csb_mode",
        "soft",
    ]


@pytest.mark.slow
def test_two_folds_in_parallel_give_summary_report_and_skip_when_rerun(demo_dir, tmp_path):
    out = tmp_path / "run"
    log = _cross_validate(demo_dir, out, "--parallel", "2")
    assert "[fold 0 | 1/2] epoch 1/1" in log and "[fold 1 | 2/2] epoch 1/1" in log
    # both folds trained at the same time: each one's epoch ended before the other fold finished
    for k in (0, 1):
        assert log.index(f"[fold {k} | {k + 1}/2] epoch 1/1") < log.index(f"[fold {1 - k}] finished")
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["folds"]) == {"0", "1"}
    for k in (0, 1):
        fold = out / f"fold{k}"
        assert (fold / "model.pt").is_file() and (fold / "metrics.json").is_file()
        test_ids = {r["id"] for r in json.loads((demo_dir / f"fold{k}.json").read_text())["test"]}
        rows = (fold / "per_image.csv").read_text().splitlines()[1:]
        assert {row.split(",")[0] for row in rows} == test_ids
    accuracies = [summary["folds"][k]["classification"]["accuracy"] for k in ("0", "1")]
    assert summary["mean"]["classification"]["accuracy"] == pytest.approx(sum(accuracies) / 2)
    for name in ("report.md", "report.html"):
        assert (out / name).is_file()
    figures = {p.name for p in (out / "figures").glob("*.png")}
    expected = {"roc_0.png", "confusion_0.png", "dice_by_size.png", "training_0.png", "gallery_0.png", "gradcam_0.png"}
    assert expected <= figures, figures
    report = (out / "report.md").read_text()
    dice = summary["mean"]["segmentation"]["dice"]
    assert f"{dice:.4f}" in report
    assert re.search(r"<img[^>]+src=\"data:image/png;base64,", (out / "report.html").read_text())

    rerun = _cross_validate(demo_dir, out, "--report", "False")
    assert "[fold 0] already evaluated, skipped" in rerun and "epoch 1/1" not in rerun


@pytest.mark.slow
def test_calibrated_fold_decides_with_the_threshold_chosen_on_validation(demo_dir, tmp_path, bundle_runs_in_process):
    out = tmp_path / "calibrated"
    proc = run_script(
        "cross_validate.py",
        "--data",
        str(demo_dir),
        "--out",
        str(out),
        "--folds",
        "0",
        "--epochs",
        "1",
        *TINY_RUN,
        "--calibrate",
        "True",
        "--report",
        "False",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    card = json.loads((out / "fold0" / "model.json").read_text())
    validation_ids = {r["id"] for r in json.loads((demo_dir / "fold0.json").read_text())["validation"]}
    validation_rows = (out / "fold0" / "validation" / "per_image.csv").read_text().splitlines()[1:]
    assert {row.split(",")[0] for row in validation_rows} == validation_ids  # chosen on validation images only
    assert card["calibration"]["images"] == len(validation_ids) and card["spatial_size"] == [32, 32]
    assert card["classifier_input"] == "bottleneck"  # the head the weights have, for evaluation and inference
    threshold, temperature = card["lesion_threshold"], card["temperature"]
    assert f"lesion threshold {threshold:.3f}" in proc.stdout and f"temperature {temperature:.3f}" in proc.stdout
    # the default operating point: the highest threshold keeping 0.95 of the validation lesion images
    calibration = card["calibration"]
    assert calibration["operating_point"] == "sensitivity" and calibration["target_sensitivity"] == 0.95
    assert calibration["constant"] or calibration["sensitivity"] >= 0.95
    assert {"specificity", "ece", "brier"} <= calibration.keys()
    assert calibration["temperature_scaling"]["temperature"] == temperature > 0
    from custom.evaluation import read_per_image

    rows = read_per_image(str(out / "fold0" / "per_image.csv"))
    metrics = json.loads((out / "fold0" / "metrics.json").read_text())["classification"]
    assert {"ece", "brier"} <= metrics.keys()
    for row in rows:
        assert row["lesion_pred"] == int(row["lesion_prob"] >= threshold), row
        assert row["pred_area"] == 0 or row["lesion_pred"] == 1  # the hard CSB gate follows the same decision
        if temperature != 1.0:  # the test split's probabilities are the calibrated ones, the network's kept beside
            p = row["lesion_prob_uncalibrated"]
            expected = calibrated_lesion_probability(np.array([[1 - p, p]]), temperature)[0]
            assert row["lesion_prob"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("grouping", "protocol", "expected"),
    [
        (["duplicates"], "duplicate-aware", {"name": "duplicate-aware", "folds": "grouped by duplicates"}),
        (["duplicates", "patient"], "duplicate-aware", {"folds": "grouped by duplicates and patient"}),
        ([], "paper", {"name": "paper", "folds": "image by image", "precision": "float32"}),
        (["duplicates"], "paper", "prepare the data again with --dedup none"),
        ([], "fast", "--protocol 'fast': expected one of duplicate-aware, paper"),
    ],
)
def test_protocol_is_checked_against_the_prepared_folds(grouping, protocol, expected, tmp_path):
    from custom.errors import InputError
    from custom.workflows.run_summary import protocol_settings

    (tmp_path / "summary.json").write_text(json.dumps({"grouping": {"by": grouping}}))
    if isinstance(expected, str):
        with pytest.raises(InputError, match=re.escape(expected)):
            protocol_settings(protocol, tmp_path)
        return
    record, overrides = protocol_settings(protocol, tmp_path)
    assert expected.items() <= record.items()
    assert overrides == ({"amp": False} if protocol == "paper" else {})
