"""Multi-task UNet++ of Aumente-Maestro et al., "A multi-task framework for breast cancer segmentation and
classification in ultrasound imaging", Comput. Methods Programs Biomed. 260 (2025) 108540, section 3.

The segmentation path is MONAI's ``BasicUNetPlusPlus`` unchanged (Zhou et al., UNet++, with deep
supervision); the classification components (section 3.3) read three of its features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.nets import BasicUNetPlusPlus

from custom.networks.blocks import ClassificationHead
from custom.networks.csb import check_num_classes

__all__ = ["MTUNetPlusPlus", "MultiScaleClassificationHead"]


class MultiScaleClassificationHead(nn.Module):
    """Feature processing and classifier of Aumente-Maestro et al., section 3.3.

    Feature processing: the bottleneck is upsampled to the resolution of the level just before it and
    concatenated with that level's encoder and decoder features. Classifier: Conv 3x3 -> 512 + norm +
    activation -> global average pooling -> FC 512 -> 256 -> ReLU -> FC 256 -> ``num_classes`` (logits;
    the paper's softmax is left to the loss and the post-processing). The pooling and the two fully
    connected layers are :class:`custom.networks.blocks.ClassificationHead` with a 256-wide hidden layer.

    Where the paper is silent: the bottleneck is upsampled by nearest-neighbour interpolation (no
    parameters, any ``spatial_dims``); the convolution's normalisation and activation are the
    backbone's (instance norm and LeakyReLU in :class:`MTUNetPlusPlus`, as in the authors' MT-nnU-Net
    code; the text says ReLU).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: channels of the three features together (encoder + bottleneck + decoder).
        num_classes: number of classes.
        conv_channels: width of the 3x3 convolution (512 in the paper).
        hidden_channels: width of the hidden fully connected layer (256 in the paper).
        act / norm: activation and normalisation after the convolution (MONAI layer factory names).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        conv_channels: int = 512,
        hidden_channels: int = 256,
        act: str | tuple = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True}),
        norm: str | tuple = ("instance", {"affine": True}),
    ) -> None:
        super().__init__()
        self.conv = Convolution(spatial_dims, in_channels, conv_channels, kernel_size=3, act=act, norm=norm)
        self.classifier = ClassificationHead(spatial_dims, conv_channels, num_classes, hidden_channels)

    def forward(self, encoder: torch.Tensor, bottleneck: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
        bottleneck = F.interpolate(bottleneck, size=encoder.shape[2:], mode="nearest")
        return self.classifier(self.conv(torch.cat([encoder, bottleneck, decoder], dim=1)))


class MTUNetPlusPlus(nn.Module):
    """Multi-task UNet++ with deep supervision, Aumente-Maestro et al. (section 3, Fig. 1).

    Outputs one lesion mask and ``num_classes`` logits.

    ``forward(x)`` returns ``{"seg": (B, 1, *spatial) logits, "cls": (B, num_classes) logits}`` and, in
    training mode with ``deep_supervision``, ``"aux_seg"``: the other deep-supervision logits. The
    prediction-refining and deterministic-oversampling modules of the framework are not part of the
    network (:class:`custom.transforms.MultiTaskDecisiond` with ``refine=True`` and
    :func:`custom.data.oversampling.oversample`), nor is the loss
    (:class:`custom.losses.deep_supervision.DeepSupervisionDiceFocalLoss`).

    How UNet++ maps onto the paper's nnU-Net-style description (where the paper is silent):

    - Backbone: MONAI's ``BasicUNetPlusPlus`` with UNet++'s widths 32-64-128-256-512 (last decoder
      node 32), instance norm + LeakyReLU(0.1) and transposed-convolution upsampling (MONAI's
      defaults, which match the authors' MT-nnU-Net code).
    - Deep supervision: UNet++ has four full-resolution outputs, one per nested sub-network
      (nodes X^{0,1} ... X^{0,4}). ``seg`` is X^{0,4}, the full network; ``aux_seg`` lists X^{0,3},
      X^{0,2}, X^{0,1}, from the deepest sub-network to the shallowest, so that the loss weights
      ``1 / i`` of eq. 2 (``seg`` is ``i = 1``) give less weight to the shallower sub-networks.
      Evaluation mode returns ``seg`` and ``cls`` only.
    - Classifier features (section 3.3: "encoder level 5, upsampled bottleneck, decoder level 5" in
      the nnU-Net version): the encoder node X^{3,0} (the level just before the bottleneck,
      ``features[3]`` channels at 1/8 resolution), the bottleneck X^{4,0} (``features[4]`` at 1/16)
      and the decoder node X^{3,1} at the same level as X^{3,0}, concatenated into
      ``2 * features[3] + features[4]`` channels (1024 by default) for
      :class:`MultiScaleClassificationHead`. ``BasicUNetPlusPlus.forward`` returns only its
      segmentation outputs, and these three tensors are exactly the inputs and the output of its
      decoder node ``upcat_3_1``; a forward hook registered for the duration of one forward pass
      reads them, so MONAI's forward runs unchanged. The hook makes the module unscriptable with
      ``torch.jit.script``; ``torch.jit.trace(..., strict=False)`` records it.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: image channels (1: the paper's grayscale input).
        num_classes: classes of the classification head, class 0 = normal (3: normal/benign/malignant).
        features: six widths as in ``BasicUNetPlusPlus``: five encoder levels and the last decoder node.
        deep_supervision: train with the four UNet++ outputs (``aux_seg``); ``False`` gives the final one only.

    Raises:
        ValueError: for ``num_classes < 2`` or ``features`` not of length 6.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 3,
        features: Sequence[int] = (32, 64, 128, 256, 512, 32),
        deep_supervision: bool = True,
    ) -> None:
        super().__init__()
        check_num_classes(num_classes)
        if len(features) != 6:
            raise ValueError(
                f"features needs six widths (five encoder levels, last decoder node), got {tuple(features)}."
            )
        self.backbone = BasicUNetPlusPlus(
            spatial_dims, in_channels, out_channels=1, features=features, deep_supervision=deep_supervision
        )
        self.classification_head = MultiScaleClassificationHead(
            spatial_dims, 2 * features[3] + features[4], num_classes
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        node: list[tuple[torch.Tensor, ...]] = []
        # inputs (X^{4,0}, X^{3,0}) and output X^{3,1} of the deepest decoder node; see the class docstring
        hook = self.backbone.upcat_3_1.register_forward_hook(lambda _, inputs, output: node.append((*inputs, output)))
        try:
            seg = self.backbone(x)
        finally:
            hook.remove()
        bottleneck, encoder, decoder = node[0]
        out: dict[str, torch.Tensor | list[torch.Tensor]] = {
            "seg": seg[-1],
            "cls": self.classification_head(encoder, bottleneck, decoder),
        }
        if self.training and len(seg) > 1:
            out["aux_seg"] = seg[-2::-1]
        return out
