"""The standard baselines of the N-Unet paper's comparison (section 4.6, Tables 2-6) as multi-task networks.

Yang & Zhu (J. Imaging 2026, 12(5), 194) compare N-Unet with U-Net, attention U-Net ("AGUnet"), UNETR
and a Swin-transformer U-Net on the joint lesion-classification and segmentation task, but do not
say how the segmentation-only baselines classify. Here each is the unchanged MONAI network with one
sigmoid output channel plus N-Unet's classification head (section 3.4: GAP -> FC -> ReLU -> FC) on
the network's bottleneck, batch-normalised first, so the baselines differ from N-Unet only in the
segmenter: N-Unet's bottleneck leaves its last convolution block through BatchNorm and ReLU, while
MONAI's residual units add their unnormalised input back after the activation.

All four share :class:`BottleneckClassifier`: it names the bottleneck submodule of the MONAI network
and captures that submodule's output with a forward hook during the segmenter's own forward pass,
so MONAI's code runs as released and the bottleneck is computed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks.layers import Norm, SkipConnection
from monai.networks.nets import UNETR, AttentionUnet, SwinUNETR, UNet
from monai.networks.nets.attentionunet import AttentionLayer

from custom.networks.blocks import ClassificationHead
from custom.networks.csb import check_num_classes

__all__ = [
    "AttentionUNetWithClassifier",
    "BottleneckClassifier",
    "SwinUNETRWithClassifier",
    "UNETRWithClassifier",
    "UNetWithClassifier",
    "innermost_submodule",
]


def innermost_submodule(network: nn.Module, container: type[nn.Module]) -> str:
    """Dotted name of the ``submodule`` of the most deeply nested ``container`` in ``network``.

    MONAI's U-Nets nest one container per resolution level (``SkipConnection`` in ``UNet``,
    ``AttentionLayer`` in ``AttentionUnet``), each holding the deeper levels in its ``submodule``;
    the innermost one holds the bottom layer, i.e. the bottleneck.

    Raises:
        ValueError: when ``network`` has no ``container``.
    """
    names = [name for name, module in network.named_modules() if isinstance(module, container)]
    if not names:
        raise ValueError(f"{type(network).__name__} contains no {container.__name__}.")
    return max(names, key=lambda name: name.count(".")) + ".submodule"


class BottleneckClassifier(nn.Module):
    """A segmentation network with an image-level classification head on its bottleneck feature map.

    ``forward(x)`` returns ``{"seg": segmenter(x), "cls": head(norm(bottleneck feature))}`` in training
    and eval mode alike (no auxiliary outputs). The head is N-Unet's :class:`ClassificationHead`
    (N-Unet paper, section 3.4); ``norm`` is a BatchNorm of the bottleneck channels. Without it, the
    MONAI U-Net's head died on BUSI (every unit of its hidden ReLU layer at 0 on every image from
    epoch 26 of the CPU budget recipe): its bottleneck activations are large and unnormalised (mean
    1.9, standard deviation 3.8 across images), and one Adam step pushed every hidden unit negative.

    The bottleneck output is captured by a forward hook registered for the duration of each call and
    read from a local list: no tensor outlives the call on the module (it would keep the autograd
    graph alive), replicas made by ``DataParallel`` each hook their own submodule, and
    ``torch.jit.trace(..., strict=False)`` records the hooked graph like any other.
    ``torch.jit.script`` cannot compile hooks that are registered in ``forward``: export by tracing.

    Args:
        segmenter: the segmentation network, ``(B, in_channels, *spatial) -> (B, 1, *spatial)`` logits.
        bottleneck: dotted name of the segmenter's submodule whose output is the bottleneck.
        bottleneck_channels: channels of the bottleneck feature map.
        spatial_dims: number of spatial dimensions.
        num_classes: classes of the head (class 0 = normal).
        hidden_channels: width of the head's hidden layer (1024 as in N-Unet).

    Raises:
        ValueError: when ``num_classes < 2``; AttributeError when ``segmenter`` has no ``bottleneck``.
    """

    def __init__(
        self,
        segmenter: nn.Module,
        bottleneck: str,
        bottleneck_channels: int,
        spatial_dims: int,
        num_classes: int,
        hidden_channels: int = 1024,
    ) -> None:
        super().__init__()
        check_num_classes(num_classes)
        segmenter.get_submodule(bottleneck)  # a wrong name fails at construction, not in the first forward
        self.segmenter = segmenter
        self.bottleneck = bottleneck
        self.bottleneck_norm = Norm[Norm.BATCH, spatial_dims](bottleneck_channels)
        self.classification_head = ClassificationHead(spatial_dims, bottleneck_channels, num_classes, hidden_channels)

    def bottleneck_features(self, output: Any) -> torch.Tensor:
        """The ``(B, C, *spatial)`` feature map in the bottleneck submodule's output (the output itself here)."""
        return output

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        captured: list[Any] = []
        hook = self.segmenter.get_submodule(self.bottleneck).register_forward_hook(
            lambda _module, _args, output: captured.append(output)
        )
        try:
            seg = self.segmenter(x)
        finally:
            hook.remove()
        bottleneck = self.bottleneck_norm(self.bottleneck_features(captured[-1]))
        return {"seg": seg, "cls": self.classification_head(bottleneck)}


class UNetWithClassifier(BottleneckClassifier):
    """The N-Unet paper's "Unet" baseline [22] (Tables 2-6): ``monai.networks.nets.UNet`` plus the bottleneck head.

    MONAI's U-Net downsamples with strided convolutions and, with ``num_res_units=2`` (the MONAI
    tutorials' setting), has two residual units per level. The paper gives only totals (29.38 M
    parameters, 25.69 G FLOPs); widths 64..1024 with four downsamplings, as in Ronneberger et al.,
    measure 27.03 M parameters and 18.41 G THOP MACs at 1x3x256x256 (head included), the closest of
    MONAI's standard settings. The head sits on the bottom layer (``channels[-1]`` at 1/16 resolution).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: image channels.
        num_classes: classes of the head.
        channels: channels per level, the last one being the bottleneck.
        strides: downsampling stride of each level but the last (``len(channels) - 1`` values).
        num_res_units: residual units per level (0 gives one plain convolution per level).
        hidden_channels: width of the head's hidden layer.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 2,
        channels: Sequence[int] = (64, 128, 256, 512, 1024),
        strides: Sequence[int] = (2, 2, 2, 2),
        num_res_units: int = 2,
        hidden_channels: int = 1024,
    ) -> None:
        segmenter = UNet(spatial_dims, in_channels, 1, channels, strides, num_res_units=num_res_units)
        super().__init__(
            segmenter,
            innermost_submodule(segmenter, SkipConnection),
            channels[-1],
            spatial_dims,
            num_classes,
            hidden_channels,
        )


class AttentionUNetWithClassifier(BottleneckClassifier):
    """The N-Unet paper's "AGUnet" baseline [11] (Tables 2-6): ``monai.networks.nets.AttentionUnet`` plus the bottleneck head.

    Oktay et al.'s attention U-Net with widths 64..1024 and four downsamplings (MONAI's attention
    U-Net downsamples with strided convolutions): 32.79 M parameters with the head, against the
    paper's 31.2 M, and 56.91 G THOP MACs at 1x3x256x256 (the paper's 27.4 G fits no standard width at
    that size). The head sits on the bottom convolution block (``channels[-1]`` at 1/16 resolution).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: image channels.
        num_classes: classes of the head.
        channels: channels per level, the last one being the bottleneck.
        strides: downsampling stride of each level but the first (``len(channels) - 1`` values).
        hidden_channels: width of the head's hidden layer.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 2,
        channels: Sequence[int] = (64, 128, 256, 512, 1024),
        strides: Sequence[int] = (2, 2, 2, 2),
        hidden_channels: int = 1024,
    ) -> None:
        segmenter = AttentionUnet(spatial_dims, in_channels, 1, channels, strides)
        super().__init__(
            segmenter,
            innermost_submodule(segmenter, AttentionLayer),
            channels[-1],
            spatial_dims,
            num_classes,
            hidden_channels,
        )


class UNETRWithClassifier(BottleneckClassifier):
    """The N-Unet paper's "UNETR" baseline [25] (Tables 2-6): ``monai.networks.nets.UNETR`` plus the bottleneck head.

    The transformer is the UNETR paper's ViT-B/16 (hidden size 768, 12 layers, 12 heads, MLP 3072,
    decoder feature size 16): 88.52 M parameters with the head and 26.41 G THOP MACs at 1x3x256x256
    (THOP does not count the attention matrix products; the paper reports 113.12 M / 113.36 G).
    The bottleneck is the ViT's last hidden state, reshaped to its ``hidden_size`` x (img_size / 16)
    grid exactly as UNETR feeds it to its first decoder stage. ``img_size`` must equal the input size.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: image channels.
        num_classes: classes of the head.
        img_size: input size (one value for every dimension, or one per dimension), divisible by 16.
        feature_size: channels of UNETR's convolutional decoder at full resolution.
        hidden_size: transformer width.
        mlp_dim: transformer MLP width.
        num_heads: attention heads.
        hidden_channels: width of the head's hidden layer.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 2,
        img_size: Sequence[int] | int = 256,
        feature_size: int = 16,
        hidden_size: int = 768,
        mlp_dim: int = 3072,
        num_heads: int = 12,
        hidden_channels: int = 1024,
    ) -> None:
        segmenter = UNETR(
            in_channels,
            1,
            img_size,
            feature_size=feature_size,
            hidden_size=hidden_size,
            mlp_dim=mlp_dim,
            num_heads=num_heads,
            spatial_dims=spatial_dims,
        )
        super().__init__(segmenter, "vit", hidden_size, spatial_dims, num_classes, hidden_channels)

    def bottleneck_features(self, output: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
        """The ViT returns ``(last hidden state, every hidden state)``; the first, as a feature map."""
        return self.segmenter.proj_feat(output[0])


class SwinUNETRWithClassifier(BottleneckClassifier):
    """The N-Unet paper's "SwinUnet" baseline [26] (Tables 2-6) as ``monai.networks.nets.SwinUNETR`` plus the bottleneck head.

    The paper's SwinUnet (He et al., 86.09 M / 18.22 G) is not in MONAI; SwinUNETR (Hatamizadeh et
    al.) is MONAI's Swin-transformer U-Net. With the SwinUNETR paper's feature size 48 it measures
    25.93 M parameters with the head and 19.15 G THOP MACs at 1x3x256x256, close to the paper's FLOPs.
    MONAI 1.6 takes no ``img_size``: every input dimension must be divisible by 32. The head sits on
    ``encoder10``, the residual block on the last Swin stage (``16 * feature_size`` at 1/32 resolution).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: image channels.
        num_classes: classes of the head.
        feature_size: embedding width (a multiple of 12).
        depths: Swin blocks per stage.
        num_heads: attention heads per stage.
        window_size: attention window size.
        hidden_channels: width of the head's hidden layer.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 2,
        feature_size: int = 48,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        hidden_channels: int = 1024,
    ) -> None:
        segmenter = SwinUNETR(
            in_channels,
            1,
            depths=depths,
            num_heads=num_heads,
            window_size=window_size,
            feature_size=feature_size,
            spatial_dims=spatial_dims,
        )
        super().__init__(segmenter, "encoder10", 16 * feature_size, spatial_dims, num_classes, hidden_channels)
