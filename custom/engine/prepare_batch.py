"""Batch preparation for multi-task engines."""

from __future__ import annotations

from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines import PrepareBatch


class MultiTaskPrepareBatch(PrepareBatch):
    """Returns ``(image, {"seg": mask, "cls": class})`` for MONAI's trainers and evaluators.

    MONAI's default preparation keeps only ``image`` and a tensor ``label``; a dict target would be
    dropped. Both targets travel inside the label dict so that losses, post-processing and metric
    handlers (which only see ``engine.state.output``) find them together.

    Args:
        image_key / mask_key / class_key: batch keys of the input, the mask and the integer class.
            A missing key is left out of the target (inference batches have neither).
        memory_format: of the image batch; ``torch.channels_last`` matches a network converted to
            channels-last, so its convolutions run without layout conversions (tensor cores on GPUs).
        track_meta: hand the image on as a ``MetaTensor`` with its metadata (inversion and saving need
            it), or as a plain tensor. Trainers take plain tensors: with ``compile``, MONAI's trainer
            rebuilds a ``MetaTensor`` from the batched metadata, which fails on any batch of images
            whose ``original_channel_dim`` is a number (every grayscale PNG).
    """

    def __init__(
        self,
        image_key: str = "image",
        mask_key: str = "label",
        class_key: str = "cls",
        memory_format: torch.memory_format = torch.preserve_format,
        track_meta: bool = True,
    ) -> None:
        self.image_key = image_key
        self.targets = {"seg": mask_key, "cls": class_key}
        self.memory_format = memory_format
        self.track_meta = track_meta

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = batchdata[self.image_key]
        if not self.track_meta and isinstance(image, MetaTensor):
            image = image.as_tensor()
        image = image.to(device=device, non_blocking=non_blocking, memory_format=self.memory_format, **kwargs)
        target = {
            task: batchdata[key].to(device=device, non_blocking=non_blocking, **kwargs)
            for task, key in self.targets.items()
            if key in batchdata
        }
        return image, target
