"""N-Unet: a multi-task U-Net for breast-ultrasound lesion segmentation and classification.

Yang & Zhu, "N-Unet: An Efficient Multi-Task Model for Precise Classification and Segmentation of
Breast Ultrasound Images", J. Imaging 2026, 12(5), 194, section 3.

The network is assembled from separate parts (``encoder``, ``decoder``, ``segmentation_head``,
``classification_head``, ``csb``) in the style of segmentation_models.pytorch, so other networks can
reuse any of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.layers.factories import Conv, Pool

from custom.errors import InputError
from custom.networks.blocks import (
    AdaptiveFeatureFusion,
    ClassificationHead,
    CrossLevelAttention,
    DoubleConv,
    PooledLevels,
)
from custom.networks.csb import ConditionalSegmentationBoost, check_csb_mode, check_num_classes

__all__ = ["CLASSIFIER_INPUTS", "DecoderStage", "EncoderStage", "NUNet", "NUNetDecoder", "NUNetEncoder", "TASKS"]

TASKS = ("multi", "seg", "cls")
CLASSIFIER_INPUTS = ("bottleneck", "decoder")


class EncoderStage(nn.Module):
    """One downsampling step of the N-Unet encoder: max-pool -> AFF (optional) -> :class:`DoubleConv`.

    The AFF module (section 3.2) fuses the pooled main-path feature with the previous AFF output and
    its result is what the stage's convolutions see, so the side branch re-enters the main path at
    every level. :meth:`forward` returns ``(level feature, AFF output)``; the second value feeds the
    next stage's side branch (without AFF it is just the pooled feature and goes unused).

    Args:
        spatial_dims: number of spatial dimensions.
        side_channels: channels of the previous AFF output.
        in_channels: channels of the pooled main-path feature (and of the AFF output).
        out_channels: channels of the level feature.
        aff: build the AFF module.
        fusion_ratio: the AFF fusion convolution maps ``2 * in_channels`` to ``in_channels // fusion_ratio``.
        dropout: AFF side-branch dropout.
    """

    def __init__(
        self,
        spatial_dims: int,
        side_channels: int,
        in_channels: int,
        out_channels: int,
        aff: bool = True,
        fusion_ratio: int = 4,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.pool = Pool[Pool.MAX, spatial_dims](2)
        self.fusion = (
            AdaptiveFeatureFusion(
                spatial_dims,
                side_channels,
                in_channels,
                max(in_channels // fusion_ratio, 1),
                side_strides=2,
                dropout=dropout,
            )
            if aff
            else None
        )
        self.conv = DoubleConv(spatial_dims, in_channels, out_channels)

    def forward(self, x: torch.Tensor, side: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool(x)
        if self.fusion is not None:
            x = self.fusion(side, x)
        return self.conv(x), x


class NUNetEncoder(nn.Module):
    """Shared N-Unet encoder: a U-Net encoder whose downsampling steps carry the AFF side branch (section 3.2).

    Level 0 is a :class:`DoubleConv` at full resolution; each further level is an :class:`EncoderStage`.
    The AFF side branch starts from the level-0 feature and each AFF module takes the previous AFF
    output through a stride-2 depthwise-separable convolution, so with the default widths at a
    256x256 input the side branch runs 32@128 -> 64@64 -> 128@32 -> 256@16 and its last output feeds
    the 512-channel bottleneck.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: image channels.
        features: channels per level, the last one being the bottleneck.
        aff: build the AFF modules (``False`` gives the plain U-Net encoder).
        fusion_ratio: see :class:`EncoderStage`.
        dropout: AFF side-branch dropout.

    Returns (forward):
        the feature of every level, shallowest first; the last one is the bottleneck.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        features: Sequence[int] = (32, 64, 128, 256, 512),
        aff: bool = True,
        fusion_ratio: int = 4,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.out_channels = tuple(features)
        self.stem = DoubleConv(spatial_dims, in_channels, features[0])
        self.stages = nn.ModuleList(
            EncoderStage(
                spatial_dims,
                # the first AFF's "previous AFF output" is the level-0 feature itself
                side_channels=features[max(level - 2, 0)],
                in_channels=features[level - 1],
                out_channels=features[level],
                aff=aff,
                fusion_ratio=fusion_ratio,
                dropout=dropout,
            )
            for level in range(1, len(features))
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = [x]
        side = x
        for stage in self.stages:
            x, side = stage(x, side)
            features.append(x)
        return features


class DecoderStage(nn.Module):
    """One N-Unet decoder step: ConvTranspose(k2, s2) -> CLAE on the skip (optional) -> concat -> :class:`DoubleConv`.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: channels of the deeper decoder feature.
        skip_channels: channels of the encoder skip feature; the upsampled feature X_U gets as many.
        out_channels: output channels.
        clae: build the CLAE module (section 3.3); its attention gate uses ``skip_channels // 2``
            intermediate channels.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, skip_channels: int, out_channels: int, clae: bool = True
    ) -> None:
        super().__init__()
        self.up = Conv[Conv.CONVTRANS, spatial_dims](in_channels, skip_channels, kernel_size=2, stride=2)
        self.attention = (
            CrossLevelAttention(spatial_dims, skip_channels, skip_channels, max(skip_channels // 2, 1))
            if clae
            else None
        )
        self.conv = DoubleConv(spatial_dims, 2 * skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.up(x)
        if self.attention is not None:
            skip = self.attention(skip, up)
        return self.conv(torch.cat([skip, up], dim=1))


class NUNetDecoder(nn.Module):
    """N-Unet segmentation decoder: one :class:`DecoderStage` per encoder skip, deepest first (section 3.3).

    Args:
        spatial_dims: number of spatial dimensions.
        features: the encoder's channels per level (shallowest first, bottleneck last).
        clae: build the CLAE modules (``False`` gives the plain U-Net decoder).

    Returns (forward):
        the full-resolution decoder feature with ``features[0]`` channels (:meth:`stages_forward`:
        every stage's output, deepest first).
    """

    def __init__(self, spatial_dims: int = 2, features: Sequence[int] = (32, 64, 128, 256, 512), clae: bool = True):
        super().__init__()
        self.stages = nn.ModuleList(
            DecoderStage(spatial_dims, features[level + 1], features[level], features[level], clae)
            for level in reversed(range(len(features) - 1))
        )

    def stages_forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs = [features[-1]]
        for i, stage in enumerate(self.stages):
            outputs.append(stage(outputs[-1], features[-2 - i]))
        return outputs[1:]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.stages_forward(features)[-1]


class NUNet(nn.Module):
    """N-Unet (Yang & Zhu 2026, section 3): shared encoder with AFF, decoder with CLAE, classification head, CSB.

    ``forward(x)`` returns raw logits: ``{"seg": (B, 1, *spatial), "cls": (B, num_classes)}``, only the
    keys of the tasks built. The CSB gate (``self.csb``, section 3.4) is not applied in ``forward``:
    it is an inference-time post-processing step (:func:`custom.networks.csb.csb_gate`, or the export
    wrapper :class:`custom.networks.csb.SegmentationWithCSB`) so that training losses see the logits.

    Decisions where the paper is silent or contradicts itself (chosen to follow the text and reproduce
    the paper's 8.95 M parameters / 14.74 G THOP MACs at 1x3x256x256):

    - Depth. Four max-pool downsamplings (at 256x256: 32@256, 64@128, 128@64, 256@32, bottleneck
      512@16). The figure's "256x16x16 stage ... 512x8x8 bottleneck" (five downsamplings) cannot
      meet the totals (a 6-level 16..512 variant measures about 4.6 G) and widths 64..1024 give
      about 31 M / 55 G.
      The "256x16x16 stage" is read as the last AFF module, which runs on the pooled 256-channel
      feature at 16x16 right before the 512-channel bottleneck; the "8x8" is taken as a figure
      error (a 128x128-input layout), and the bottleneck is 512@16x16.
    - Where AFF sits. One AFF per downsampling step, between the max-pool and the level's double
      conv: the pooled feature is the "main-branch feature from the downsampling path" X_U of eq. 6
      and the AFF output is what the level's convolutions see (the branch re-enters the main path at
      every level; skips and bottleneck are the ordinary level outputs).
    - Side branch resolution. The previous AFF output reaches the next (half-size) level through a
      stride-2 3x3 depthwise conv whose 1x1 pointwise conv maps its channels to the level's width
      (eq. 1-2). The first AFF takes the level-0 feature as its "previous AFF output".
    - Fusion widths. Eq. 7 maps the 2C concatenation to C/4 with a 3x3 conv, the second SE acts on
      those C/4 channels and eq. 8 restores C with a 3x3 conv. Full-width 2C->C / C->C fusion convs
      would give 10.82 M / 15.90 G, C/2 gives 9.63 M / 14.99 G and C/8 8.75 M / 14.31 G.
    - Dropout 0.2 acts on the AFF side branch (after its SE), not on the main path.
    - CLAE: the attention gate's intermediate width is F = C/2 (as in Oktay et al.'s attention U-Net);
      plain 1x1 convolutions without batch norm, as eq. 14 writes them. CBAM's MLP has biases.
    - Convolutions keep their biases before batch norm, as in the plain U-Net whose 7.76 M / 13.75 G
      the totals were compared with (the ``unet_cls`` ablation adds only the 0.53 M head to it).

    Measured (thop.profile, eval mode, 1x3x256x256, num_classes 2): 9.04 M parameters (+1.0 %) and
    14.54 G MACs (-1.4 %) against the paper's 8.95 M / 14.74 G.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: image channels.
        num_classes: classes of the classification head; class 0 must be "normal" for CSB.
        features: channels per encoder level, bottleneck last.
        aff: build the AFF encoder side branch (section 3.2).
        clae: build the CLAE decoder attention (section 3.3).
        csb_mode: ``"hard"`` (the paper), ``"soft"`` or ``"off"``; forced to ``"off"`` unless ``task="multi"``.
        task: ``"multi"`` (both heads), ``"seg"`` (no classification head) or ``"cls"`` (no decoder).
        dropout: AFF side-branch dropout rate.
        head_dropout: dropout before each layer of the classification head (0, the paper; see
            :class:`ClassificationHead`).
        classifier_input: what the classification head pools: ``"bottleneck"`` (the paper) or
            ``"decoder"``, the bottleneck and every decoder stage (:class:`PooledLevels`; 992 channels
            with the default widths, needs ``task="multi"``). A deviation from the paper, for the
            lesion call on unseen scanners; the two give checkpoints of different shapes.

    Raises:
        ValueError: for an unknown ``task``, ``csb_mode`` or ``classifier_input``, fewer than two ``features`` or
            ``num_classes < 2``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 2,
        features: Sequence[int] = (32, 64, 128, 256, 512),
        aff: bool = True,
        clae: bool = True,
        csb_mode: str = "hard",
        task: str = "multi",
        dropout: float = 0.2,
        head_dropout: float = 0.0,
        classifier_input: str = "bottleneck",
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise InputError(f"Unknown task {task!r}; expected one of {', '.join(map(repr, TASKS))}.")
        if classifier_input not in CLASSIFIER_INPUTS or (classifier_input == "decoder" and task != "multi"):
            raise InputError(
                f"classifier_input {classifier_input!r} (task {task!r}; from --classifier_input, a recipe or the model "
                "card): expected 'bottleneck', or 'decoder' with task 'multi'."
            )
        check_csb_mode(csb_mode)
        if len(features) < 2:
            raise ValueError(f"features needs at least two levels, got {tuple(features)}.")
        check_num_classes(num_classes)
        self.task = task
        # each encoder level halves the image: a side must divide by 2^(levels - 1) to come back whole
        self.size_divisor = 2 ** (len(features) - 1)
        self.encoder = NUNetEncoder(spatial_dims, in_channels, features, aff=aff, dropout=dropout)
        self.decoder = NUNetDecoder(spatial_dims, features, clae=clae) if task != "cls" else None
        self.segmentation_head = Conv[Conv.CONV, spatial_dims](features[0], 1, 1) if task != "cls" else None
        self.pooled_levels = PooledLevels(spatial_dims) if classifier_input == "decoder" else None
        head_channels = features[-1] + (sum(features[:-1]) if self.pooled_levels is not None else 0)
        self.classification_head = (
            ClassificationHead(spatial_dims, head_channels, num_classes, dropout=head_dropout)
            if task != "seg"
            else None
        )
        # without both outputs there is nothing to gate
        self.csb = ConditionalSegmentationBoost(csb_mode if task == "multi" else "off")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(x)
        out: dict[str, torch.Tensor] = {}
        decoded = [features[-1]]
        if self.decoder is not None and self.segmentation_head is not None:
            decoded += self.decoder.stages_forward(features)
            out["seg"] = self.segmentation_head(decoded[-1])
        if self.classification_head is not None:
            head_input = self.pooled_levels(decoded) if self.pooled_levels is not None else features[-1]
            out["cls"] = self.classification_head(head_input)
        return out
