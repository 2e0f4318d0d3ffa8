"""ACSNet's multi-task loss (He et al., Comput. Biol. Med. 2024, section 3.4, eq. 8-13)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn

from custom.errors import InputError

__all__ = ["ACSNetLoss", "VGG16Features"]

# VGG-16 convolution widths per block up to conv4_3; a 2x2 max pool separates the blocks
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512))


class VGG16Features(nn.Module):
    """Frozen VGG-16 (Simonyan & Zisserman) feature extractor: the outputs of relu1_2, relu2_2, relu3_3 and relu4_3.

    These four levels are the features LossNet compares (ACSNet, eq. 10-11). The weights are read
    from a local torchvision-layout ``vgg16`` state dict (keys ``features.<index>.weight/bias``; the
    layers after relu4_3 and the classifier are ignored) and held as non-persistent buffers: they move
    with ``.to(device)`` but are not parameters (nothing to optimise or decay) and are not written
    into checkpoints.

    Args:
        weights_path: local VGG-16 state-dict file.

    Raises:
        InputError: when the file does not exist or lacks a layer.
    """

    def __init__(self, weights_path: str) -> None:
        super().__init__()
        if not os.path.isfile(weights_path):
            raise InputError(f"vgg_weights {weights_path!r} does not exist; give a local VGG-16 state-dict file.")
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        index, in_channels = 0, 3
        for block in VGG16_BLOCKS:
            for out_channels in block:
                for name, shape in (("weight", (out_channels, in_channels, 3, 3)), ("bias", (out_channels,))):
                    key = f"features.{index}.{name}"
                    if key not in state or tuple(state[key].shape) != shape:
                        raise InputError(f"vgg_weights {weights_path!r}: {key} of shape {shape} is missing.")
                    self.register_buffer(f"{name}_{index}", state[key].float(), persistent=False)
                index += 2  # each convolution is followed by its ReLU in torchvision's numbering
                in_channels = out_channels
            index += 1  # the max pool closing the block

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        index = 0
        for block, widths in enumerate(VGG16_BLOCKS):
            if block > 0:
                x = F.max_pool2d(x, 2)
                index += 1
            for _ in widths:
                x = F.relu(F.conv2d(x, getattr(self, f"weight_{index}"), getattr(self, f"bias_{index}"), padding=1))
                index += 2
            features.append(x)
        return features


class ACSNetLoss(nn.Module):
    """``L = lambda * L_cls + (1 - lambda) * (L_dice + gamma * L_LossNet)``, ACSNet eq. 13 and 12.

    - ``L_cls`` (eq. 8): cross-entropy on the class logits. The paper's binary cross-entropy for
      benign/malignant is the 2-logit cross-entropy here (normal/lesion, or 3 classes
      normal/benign/malignant with class 0 = normal).
    - ``L_dice`` (eq. 9): MONAI's ``DiceLoss`` on the sigmoid of the mask logits with the equation's
      +1 smoothing, computed per image and averaged (a choice: the paper does not say; per image,
      an empty mask of a normal image is matched by an empty prediction).
    - ``L_LossNet`` (eq. 10-11), the perceptual term of Zhao et al.'s LossNet: the mean squared
      difference of :class:`VGG16Features` (relu1_2, relu2_2, relu3_3, relu4_3) of the predicted
      mask probability and of the true mask, each repeated to three channels without ImageNet
      normalisation, summed over the four levels. It needs ImageNet VGG-16 weights, which cannot be
      downloaded here: it is used only when ``vgg_weights`` names a local file; without one the
      segmentation loss is the Dice loss alone.

    ``lambda = 0.3`` and ``gamma = 0.2`` (section 4.2). The loss has no learnable parameters. It reads
    only ``pred["seg"]`` and ``pred["cls"]``, so extra keys such as ``aux_seg`` are ignored and the
    same loss serves training and the validation loss.

    Args:
        cls_weight: lambda, the weight of the classification loss.
        perceptual_weight: gamma, the weight of the LossNet term inside the segmentation loss.
        vgg_weights: local torchvision-layout VGG-16 state-dict file; ``None`` drops the LossNet term.
    """

    def __init__(self, cls_weight: float = 0.3, perceptual_weight: float = 0.2, vgg_weights: str | None = None) -> None:
        super().__init__()
        if not 0.0 <= cls_weight <= 1.0:
            raise ValueError(f"cls_weight (lambda) must be in [0, 1], got {cls_weight}.")
        self.cls_weight = cls_weight
        self.perceptual_weight = perceptual_weight
        self.cross_entropy = nn.CrossEntropyLoss()
        self.dice = DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
        self.vgg = VGG16Features(vgg_weights) if vgg_weights is not None else None

    def perceptual(self, seg_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """LossNet term (eq. 10-11) between the predicted mask probability and the true mask."""
        pred_features = self.vgg(torch.sigmoid(seg_logits).expand(-1, 3, -1, -1))
        with torch.no_grad():
            true_features = self.vgg(mask.to(seg_logits.dtype).expand(-1, 3, -1, -1))
        return sum(F.mse_loss(p, t) for p, t in zip(pred_features, true_features))

    def forward(self, pred: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mask = target["seg"].float()
        seg_loss = self.dice(pred["seg"], mask)
        if self.vgg is not None:
            seg_loss = seg_loss + self.perceptual_weight * self.perceptual(pred["seg"], mask)
        cls_loss = self.cross_entropy(pred["cls"].float(), target["cls"].reshape(-1).long())
        return self.cls_weight * cls_loss + (1.0 - self.cls_weight) * seg_loss
