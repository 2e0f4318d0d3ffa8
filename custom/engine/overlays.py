"""TensorBoard overlays of validation predictions: image, ground-truth mask and predicted mask side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from ignite.engine import Engine, Events
from monai.handlers.tensorboard_handlers import TensorBoardHandler
from monai.utils import convert_to_tensor
from monai.visualize import blend_images

from custom.keys import DecisionKeys

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["ValidationOverlays", "overlay_panel"]

# colour maps whose value at 1.0 is pure green / red: blend_images colours a 0/1 mask with cmap(1.0)
GROUND_TRUTH_CMAP = "brg"
PREDICTION_CMAP = "hsv"


def _plane(x: torch.Tensor) -> torch.Tensor:
    """(C, *spatial) -> (C, H, W): 3D volumes are shown by their middle slice along the last axis."""
    x = convert_to_tensor(x, track_meta=False).detach().float().cpu()
    return x[..., x.shape[-1] // 2] if x.dim() == 4 else x


def overlay_panel(image: torch.Tensor, label: torch.Tensor, pred: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """A (3, H, 3W) RGB panel in [0, 1]: the image, the image with the ground truth (green), the image with the prediction (red).

    Args:
        image: (C, *spatial) input; a 1- or 3-channel image is shown as it is, otherwise its first channel.
        label: (1, *spatial) 0/1 ground-truth mask.
        pred: (1, *spatial) 0/1 predicted mask (after CSB).
        alpha: opacity of the masks; background pixels (0) stay uncoloured.
    """
    image, label, pred = _plane(image), _plane(label), _plane(pred)
    if image.shape[0] not in (1, 3):
        image = image[:1]
    # an empty mask renders the image exactly as in the two overlays (same rescaling, same RGB conversion)
    plain = blend_images(image, torch.zeros_like(label), alpha=0.0, cmap=GROUND_TRUTH_CMAP)
    truth = blend_images(image, label, alpha=alpha, cmap=GROUND_TRUTH_CMAP)
    predicted = blend_images(image, pred, alpha=alpha, cmap=PREDICTION_CMAP)
    return torch.cat([torch.as_tensor(p) for p in (plain, truth, predicted)], dim=-1).clamp(0.0, 1.0)


class ValidationOverlays(TensorBoardHandler):
    """Writes :func:`overlay_panel` of the first ``max_images`` validation images to TensorBoard after each validation.

    The N-Unet paper (000) shows qualitative results as image / ground truth / prediction figures
    (section 4) but prescribes no training-time logging; choices made here:

    - the same images every time (the first of the validation loader, which does not shuffle), so the
      panels show how one prediction evolves; tags ``<tag>/0`` ... ``<tag>/<max_images - 1>``;
    - the step is the evaluator's epoch, which MONAI's ``ValidationHandler`` sets to the trainer's
      epoch, so the panels line up with the validation scalars;
    - the prediction is the post-processed, CSB-gated ``seg_pred`` of
      :class:`custom.transforms.MultiTaskDecisiond`, i.e. what the validation metrics score;
    - outputs without a mask (a classification-only network) are skipped, so no panel is written.

    Attach it to the validation evaluator (``validate#handlers``); under DDP only rank 0 gets handlers.

    Args:
        summary_writer: an existing ``SummaryWriter``; by default one is created in ``log_dir``.
        log_dir: TensorBoard folder when no writer is given.
        max_images: number of validation images shown.
        tag: TensorBoard tag prefix.
        image_key / label_key / pred_key: keys of the post-processed output holding the input image,
            the ground-truth mask and the predicted mask.
        alpha: mask opacity in the panels.
    """

    def __init__(
        self,
        summary_writer: SummaryWriter | None = None,
        log_dir: str = "./runs",
        max_images: int = 4,
        tag: str = "val_overlay",
        image_key: str = "image",
        label_key: str = DecisionKeys.SEG_LABEL,
        pred_key: str = DecisionKeys.SEG_PRED,
        alpha: float = 0.5,
    ) -> None:
        super().__init__(summary_writer=summary_writer, log_dir=log_dir)
        self.max_images = max_images
        self.tag = tag
        self.keys = (image_key, label_key, pred_key)
        self.alpha = alpha
        self._panels: list[torch.Tensor] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self._panels.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _collect(self, engine: Engine) -> None:
        # evaluators decollate their output into one dict per image
        for item in engine.state.output:
            if len(self._panels) >= self.max_images:
                return
            if all(key in item for key in self.keys):
                self._panels.append(overlay_panel(*(item[key] for key in self.keys), alpha=self.alpha))

    def _write(self, engine: Engine) -> None:
        for i, panel in enumerate(self._panels):
            self._writer.add_image(f"{self.tag}/{i}", panel, engine.state.epoch, dataformats="CHW")
        self._writer.flush()
