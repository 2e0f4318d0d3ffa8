"""Assembles the report of one or more runs: tables, figures, overlays, Grad-CAM, comparisons."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from custom.fileio import atomic_write_text

from .comparison import comparison_table
from .document import Document, Figure, Heading, Paragraph, to_html, to_markdown
from .figures import plot_calibration, plot_confusion, plot_roc, plot_size_tiers, plot_training
from .gallery import plot_gallery
from .gradcam import plot_gradcam
from .inference import FoldModel
from .runs import Run
from .tables import (
    all_images_table,
    class_table,
    classification_table,
    dataset_table,
    fold_table,
    gate_table,
    pooled_ci_table,
    segmentation_table,
    size_tier_table,
    three_class_table,
)


def build_report(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Writes ``out/report.md``, ``out/report.html`` and ``out/figures/*.png`` for ``run_dirs``; returns ``out``."""
    runs = [Run(Path(d)) for d in run_dirs]
    if len({run.name for run in runs}) < len(runs):  # a/cv and b/cv: columns both headed "cv" said nothing
        runs = [Run(run.path, label=f"{run.path.parent.name}/{run.path.name}") for run in runs]
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    names = ", ".join(run.name for run in runs)
    doc = Document(f"Cross-validation report: {names}")
    doc.add(*[Paragraph(_provenance(run)) for run in runs])

    doc.add(Heading("Results (mean ± std over folds)"))
    doc.add(
        *[
            t
            for t in (
                classification_table(runs),
                three_class_table(runs),
                segmentation_table(runs),
                all_images_table(runs),
                size_tier_table(runs),
                class_table(runs),
                dataset_table(runs),
                gate_table(runs),
                pooled_ci_table(runs),
            )
            if t is not None
        ]
    )
    doc.add(*[fold_table(run) for run in runs])
    plot_size_tiers(runs, out / "figures" / "dice_by_size.png")
    doc.add(Figure("figures/dice_by_size.png", "Dice (N-Unet) by lesion-size tier, mean ± std over folds."))

    if len(runs) > 1:
        doc.add(Heading("Paired comparisons"))
        doc.add(*[comparison_table(runs[0], run) for run in runs[1:]])

    for i, run in enumerate(runs):
        doc.add(Heading(f"Run {run.name}"))
        models: dict[int, FoldModel] = {}  # each fold's network is loaded once for gallery and Grad-CAM
        for stem, plot, caption in (
            ("roc", plot_roc, "ROC of the lesion probability per fold and the vertical mean."),
            ("confusion", plot_confusion, "Confusion matrix over the test images of all folds."),
            ("training", plot_training, "Training loss, AMTL task weights and validation metrics per epoch."),
        ):
            plot(run, out / "figures" / f"{stem}_{i}.png")
            doc.add(Figure(f"figures/{stem}_{i}.png", f"{run.name}: {caption}"))
        if plot_calibration(run, out / "figures" / f"calibration_{i}.png"):
            doc.add(
                Figure(
                    f"figures/calibration_{i}.png",
                    f"{run.name}: reliability diagram of the lesion probability over the test images of all "
                    "folds (10 equal-width bins), with the Brier score and the expected calibration error; "
                    "before and after temperature scaling where the folds were calibrated.",
                )
            )
        if plot_gallery(run, out / "figures" / f"gallery_{i}.png", models):
            doc.add(
                Figure(
                    f"figures/gallery_{i}.png",
                    f"{run.name}: best / median / worst Dice of lesion images and the failure modes "
                    "(false-positive class, false-negative class, IoU = 0, 0 < IoU < 0.3), drawn at the network "
                    "resolution; ground truth green, CSB-gated prediction red.",
                )
            )
        if plot_gradcam(run, out / "figures" / f"gradcam_{i}.png", models):
            doc.add(
                Figure(
                    f"figures/gradcam_{i}.png",
                    f"{run.name}: Grad-CAM of the predicted class "
                    "(the classification head's input), first cases of each ground-truth class by id.",
                )
            )

    atomic_write_text(out / "report.md", to_markdown(doc))
    atomic_write_text(out / "report.html", to_html(doc, out))
    return out


def _provenance(run: Run) -> str:
    """Where the run came from and what it overrode, in one sentence."""
    overrides = ", ".join(f"{k}={v}" for k, v in run.meta.get("overrides", {}).items()) or "none"
    origin = run.meta.get("produced_by", {})  # written by custom.workflows.crossval through custom.provenance
    protocol = run.summary.get("protocol")
    stated = (
        f"protocol {protocol['name']} (folds {protocol['folds']}, {protocol['precision']})"
        if protocol
        else "protocol not recorded"
    )
    return (
        f"{run.name}: data {run.meta.get('data', 'n/a')}, folds {run.folds}, {stated}, "
        f"lesion threshold {'chosen on validation' if run.meta.get('calibrate') else 'argmax'}, commit "
        f"{str(origin.get('git_commit') or 'n/a')[:10]}, created {origin.get('created', 'n/a')}, "
        f"overrides {overrides}; masks scored at {_resolution(run)}."
    )


def _resolution(run: Run) -> str:
    """The size the run's masks were compared at (evaluate.json: the original; from the cache: the cache's)."""
    cached = any(Path(c).name == "cached.json" for c in run.meta.get("config_files", []))
    return "the size of the prepared cache (cached.json)" if cached else "each image's original size"
