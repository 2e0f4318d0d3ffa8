"""Grad-CAM of the classification head (``monai.visualize.GradCAM``) for a few test cases of each class."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from monai.visualize import GradCAM  # noqa: E402

from .figures import save_figure  # noqa: E402
from .gallery import draw_contour, models_for, truth_name  # noqa: E402
from .inference import FoldModel, display_image, to_display  # noqa: E402
from .runs import Run  # noqa: E402


class ClassificationLogits(torch.nn.Module):
    """The classification logits alone: GradCAM needs a network that returns one tensor."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)["cls"]


def cam_target_layer(network: torch.nn.Module) -> str | None:
    """The layer whose output the classification head reads, as a name under :class:`ClassificationLogits`.

    N-Unet: the last encoder stage's DoubleConv (the stage itself returns a feature and a side branch).
    None for networks without that encoder (the peers and baselines read their bottleneck through a
    forward hook, which ``GradCAM``'s own hooks on the same module do not compose with): no figure.
    """
    stages = getattr(getattr(network, "encoder", None), "stages", None)
    return None if stages is None else f"network.encoder.stages.{len(stages) - 1}.conv"


def cam_of(model: FoldModel, x: torch.Tensor, layer: str, class_index: int) -> np.ndarray:
    """Grad-CAM (H, W) in [0, 1] of the class ``class_index`` on ``layer`` (:func:`cam_target_layer`)."""
    cam = GradCAM(ClassificationLogits(model.network), target_layers=layer)
    with torch.enable_grad():
        result = cam(x.clone().requires_grad_(True), class_idx=class_index)
    return to_display(result[0, 0].detach().numpy())


def plot_gradcam(run: Run, path: Path, models: dict[int, FoldModel], per_class: int = 2) -> int:
    """Grad-CAM overlays of the first ``per_class`` test cases (by id) of each ground-truth class; returns the count
    (0, and no figure, when the network has no layer to explain: :func:`cam_target_layer`)."""
    by_class: dict[str, list[dict]] = {}
    for row in sorted(run.per_image, key=lambda r: (truth_name(r), str(r["id"]))):
        if len(by_class.setdefault(truth_name(row), [])) < per_class:
            by_class[truth_name(row)].append(row)
    cases = [row for group in by_class.values() for row in group]
    if not cases or cam_target_layer(models_for(run, cases[0]["fold"], models).network) is None:
        return 0
    fig, axes = plt.subplots(2, len(cases), figsize=(3 * len(cases), 6.4), squeeze=False)
    for col, row in enumerate(cases):
        model = models_for(run, row["fold"], models)
        case = model.predict(str(row["id"]))
        img = display_image(case.image)
        for ax in axes[:, col]:
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            ax.axis("off")
        layer = cam_target_layer(model.network)
        pred = case.cls_pred  # decided as the per-image table was scored: calibrated threshold, not the argmax
        axes[1, col].imshow(cam_of(model, case.input, layer, pred), cmap="jet", alpha=0.45, vmin=0, vmax=1)
        draw_contour(axes[0, col], case.label, "lime")
        axes[0, col].set_title(
            f"{row['id']} (fold {row['fold']})\ntrue {truth_name(row)}, "
            f"pred class {pred} (p={case.cls_prob[pred]:.2f})",
            fontsize=8,
        )
    fig.suptitle(
        f"Grad-CAM of the predicted class, the classification head's input: {run.name} (top: image and ground truth)",
        fontsize=11,
    )
    save_figure(fig, path)
    plt.close(fig)
    return len(cases)
