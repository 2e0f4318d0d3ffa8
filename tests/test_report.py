"""End-to-end check of the report (custom/report, scripts/report.py) on two tiny cross-validation runs."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONFIGS, REPO, run_bundle

from custom.workflows.run_summary import summarize_run

FOLDS = (0, 1)
SPATIAL = "[32,32]"
TRAIN = str(CONFIGS / "train.json")
EVALUATE = f"['{TRAIN}','{CONFIGS / 'evaluate.json'}']"


def _write_run(run: Path, data: Path, csb_mode: str) -> None:
    """run.json and summary.json as scripts/cross_validate.py writes them, from the folds' per_image.csv."""
    meta = {
        "name": run.name,
        "data": str(data),
        "config_files": [TRAIN],
        "overrides": {"spatial_size": [32, 32], "num_classes": 2, "csb_mode": csb_mode},
        "folds": list(FOLDS),
        "produced_by": {"git_commit": "test", "created": "test"},
    }
    (run / "run.json").write_text(json.dumps(meta))
    summarize_run(data, run, FOLDS)


@pytest.fixture(scope="module")
def two_runs(demo_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    """Run A: 1 epoch per fold, CSB hard. Run B: A's models evaluated with CSB off at another network input
    size (48x48 instead of 32x32: the networks are fully convolutional), on the same test images."""
    root = tmp_path_factory.mktemp("runs")
    run_a, run_b = root / "hard", root / "off"
    for k in FOLDS:
        common = ("--dataset_dir", str(demo_dir), "--fold", str(k), "--num_workers", "0")
        run_bundle(
            "training",
            "--config_file",
            TRAIN,
            *common,
            "--spatial_size",
            SPATIAL,
            "--epochs",
            "1",
            "--output_dir",
            str(run_a / f"fold{k}"),
        )
        run_bundle(
            "evaluating",
            "--config_file",
            EVALUATE,
            *common,
            "--spatial_size",
            SPATIAL,
            "--output_dir",
            str(run_a / f"fold{k}"),
        )
        shutil.copytree(run_a / f"fold{k}", run_b / f"fold{k}")
        run_bundle(
            "evaluating",
            "--config_file",
            EVALUATE,
            *common,
            "--spatial_size",
            "[48,48]",
            "--csb_mode",
            "off",
            "--output_dir",
            str(run_b / f"fold{k}"),
        )
    _write_run(run_a, demo_dir, "hard")
    _write_run(run_b, demo_dir, "off")
    return run_a, run_b


def _report(out: Path, *runs: Path) -> tuple[str, str]:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "report.py"), *map(str, runs), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return (out / "report.md").read_text(), (out / "report.html").read_text()


@pytest.mark.slow
def test_report_of_one_run(two_runs, tmp_path):
    run_a, _ = two_runs
    md, html = _report(tmp_path, run_a)
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    names = {Path(f).stem for f in figures}
    assert {"dice_by_size", "roc_0", "confusion_0", "calibration_0", "training_0", "gallery_0", "gradcam_0"} <= names
    for figure in figures:
        assert (tmp_path / figure).stat().st_size > 1000
    # self-contained: every figure embedded, no file reference
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert 'src="figures/' not in html
    assert "<table>" in html and "Paired comparison" not in md

    summary = json.loads((run_a / "summary.json").read_text())
    for section, metric in (
        [("classification", m) for m in ("accuracy", "precision", "recall", "f1", "auc", "ece", "brier")]
        + [("segmentation", m) for m in ("dice", "iou", "pixel_accuracy", "sensitivity", "precision", "hd95", "asd")]
        + [("segmentation_all_images", "dice_all"), ("segmentation_all_images", "normal_false_positive_rate")]
    ):
        cell = _cell(md, metric, table_starts=_caption(section))
        assert cell == _expected(summary, section, metric), (section, metric, cell)
    dice, (lo, hi) = summary["pooled"]["segmentation"]["dice"], summary["pooled"]["ci95"]["dice"]
    assert f"{dice:.4f} [{lo:.4f}, {hi:.4f}]" in md
    assert "protocol duplicate-aware (folds image by image" in md  # the demo data is prepared with --dedup none
    assert "masks scored at each image's original size" in md and "hd95" in summary["conventions"]["segmentation"]


@pytest.mark.slow
def test_report_compares_two_runs(two_runs, tmp_path):
    md, html = _report(tmp_path, *two_runs)
    assert "Paired comparison: off vs hard" in md and "Paired comparison: off vs hard" in html
    row = next(line for line in md.splitlines() if line.startswith("| lesion decision correct |"))
    assert len(row.split("|")) == 9  # metric, n, A, B, B - A, CI, p
    for name in ("hard", "off"):
        assert f"Run {name}" in md
    assert {"gallery_0.png", "gallery_1.png"} <= {p.name for p in (tmp_path / "figures").iterdir()}
    # networks run at 32x32 and 48x48, masks compared on the same grid: each image's original size
    for k in FOLDS:
        areas = [
            {r["id"]: r["gt_area"] for r in csv.DictReader(open(run / f"fold{k}" / "per_image.csv"))}
            for run in two_runs
        ]
        assert areas[0] == areas[1] and max(map(int, areas[0].values())) > 32 * 32


def test_two_runs_of_one_folder_name_are_told_apart(two_runs, tmp_path):
    copies = [tmp_path / side / "cv" for side in ("a", "b")]
    for copy in copies:
        shutil.copytree(two_runs[0], copy)
    md, _ = _report(tmp_path / "report", *copies)
    assert "Paired comparison: b/cv vs a/cv" in md and "Run a/cv" in md


def _caption(section: str) -> str:
    return {
        "classification": "Classification, lesion vs normal",
        "segmentation": "Segmentation (N-Unet)",
        "segmentation_all_images": "Segmentation, Aumente-Maestro et al.",
    }[section]


def _cell(md: str, metric: str, table_starts: str) -> str:
    """The first run's cell of ``metric`` in the table whose caption starts with ``table_starts``."""
    table = md.split(f"**{table_starts}", 1)[1].split("\n\n*", 1)[0]
    row = next(line for line in table.splitlines() if line.startswith(f"| {metric} |"))
    return row.strip("|").split("|")[1].strip()


def _expected(summary: dict, section: str, metric: str) -> str:
    """``mean ± std`` with 4 decimals straight from summary.json (NaN, e.g. AUC of a one-class fold, is n/a)."""

    def four(value: float) -> str:
        return "n/a" if value is None or value != value else f"{value:.4f}"  # JSON null is a NaN

    return f"{four(summary['mean'][section][metric])} ± {four(summary['std'][section][metric])}"


def test_gallery_and_gradcam_decide_by_the_calibrated_threshold_the_table_was_scored_with(demo_dir, tmp_path):
    """The figures classified and gated with the argmax (0.5), the per-image table with the card's calibrated
    threshold and temperature: the committed report's pictures could disagree with its numbers."""
    import torch
    from generated import save_untrained_checkpoint

    from custom.checkpoints import write_card
    from custom.report.inference import FoldModel
    from custom.report.runs import Run

    run = tmp_path / "run"
    (run / "fold0").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"data": str(demo_dir), "config_files": [TRAIN], "folds": [0]}))
    (run / "summary.json").write_text("{}")
    weights = save_untrained_checkpoint(run / "fold0" / "model.pt")
    state = torch.load(weights, weights_only=True)
    # a network sure of the lesion everywhere (segmentation logit 5) and leaning to "lesion" (class logits 0, 0.5:
    # p(lesion) 0.62 by the argmax rule, 0.56 at temperature 2), below the calibrated threshold 0.8
    for name, value in state["model"].items():
        if name.startswith(("segmentation_head.", "classification_head.fc2.")):
            value.zero_()
    state["model"]["segmentation_head.bias"].fill_(5.0)
    state["model"]["classification_head.fc2.bias"].copy_(torch.tensor([0.0, 0.5]))
    torch.save(state, weights)
    write_card(weights, {"spatial_size": [32, 32], "lesion_threshold": 0.8, "temperature": 2.0})
    image_id = json.loads((demo_dir / "fold0.json").read_text())["test"][0]["id"]
    case = FoldModel(Run(run), 0).predict(image_id)
    assert case.input.shape[-2:] == (32, 32)  # the card's input size
    assert case.cls_prob[1] == pytest.approx(float(torch.sigmoid(torch.tensor(0.25))), abs=1e-5)  # calibrated
    assert case.cls_pred == 0 and not case.mask.any()  # normal by the threshold: the hard gate empties the mask
