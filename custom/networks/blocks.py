"""Small building blocks of N-Unet (Yang & Zhu, J. Imaging 2026, 12(5), 194, section 3).

Every block takes ``spatial_dims`` first and picks its layers through MONAI's factories, so the same
code builds 2D and 3D networks. The blocks are deliberately plain (no hidden normalisation or
activation beyond what the paper's equations say) so that parameter and MAC counts can be read off
the equations.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.blocks import ChannelSELayer, Convolution
from monai.networks.layers.factories import Conv, Norm, Pool

__all__ = [
    "AdaptiveFeatureFusion",
    "AttentionGate",
    "CBAM",
    "ChannelAttention",
    "ClassificationHead",
    "ConvBNReLU",
    "CrossLevelAttention",
    "DepthwiseSeparableConv",
    "DoubleConv",
    "PooledLevels",
    "SqueezeExcitation",
    "SpatialAttention",
]


class ConvBNReLU(Convolution):
    """Convolution -> batch norm -> ReLU: the U-Net unit and the AFF fusion step ``ReLU(BN(Conv(.)))`` (eq. 7-8).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: convolution kernel size ("same" padding).
        strides: convolution stride.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int = 3, strides: int = 1
    ) -> None:
        super().__init__(
            spatial_dims,
            in_channels,
            out_channels,
            strides=strides,
            kernel_size=kernel_size,
            act=("relu", {"inplace": True}),
            norm=Norm.BATCH,
        )


class DoubleConv(nn.Sequential):
    """Two 3x3 :class:`ConvBNReLU` units: the U-Net encoder/decoder stage that N-Unet keeps (section 3.1).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: input channels.
        out_channels: output channels of both convolutions.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_0 = ConvBNReLU(spatial_dims, in_channels, out_channels)
        self.conv_1 = ConvBNReLU(spatial_dims, out_channels, out_channels)


class DepthwiseSeparableConv(nn.Sequential):
    """Depthwise k x k convolution (eq. 1) followed by a pointwise 1x1 convolution (eq. 2), section 3.2 step 1.

    The paper gives no normalisation or activation between or after the two steps, so there is none.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: input channels (one depthwise kernel each).
        out_channels: output channels of the pointwise convolution.
        kernel_size: depthwise kernel size (3 in the paper).
        strides: stride of the depthwise convolution; 2 lets the AFF side branch follow the encoder's
            downsampling.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int = 3, strides: int = 1
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.depthwise = conv(
            in_channels, in_channels, kernel_size, stride=strides, padding=kernel_size // 2, groups=in_channels
        )
        self.pointwise = conv(in_channels, out_channels, 1)


class SqueezeExcitation(ChannelSELayer):
    """Squeeze-and-excitation with reduction 16, section 3.2 (eq. 3-5).

    GAP -> FC C->C/16 -> ReLU -> FC C/16->C -> sigmoid -> channel reweighting; this is MONAI's
    ``ChannelSELayer`` with the paper's reduction ratio (MONAI's default is 2). The hidden width is kept
    at least 1 so narrow features (C < 16) still work.

    Args:
        spatial_dims: number of spatial dimensions.
        channels: number of channels to reweight.
        reduction: reduction ratio r.
    """

    def __init__(self, spatial_dims: int, channels: int, reduction: int = 16) -> None:
        super().__init__(spatial_dims, channels, r=min(reduction, channels))


class ChannelAttention(nn.Module):
    """CBAM channel attention, section 3.3 (eq. 9-11).

    A shared two-layer MLP (C -> C/16 -> ReLU -> C) is applied to the spatially average- and max-pooled
    descriptors; their sum through a sigmoid reweights the channels: ``X_C = sigma(MLP(z_avg) + MLP(z_max)) * X``.

    Args:
        spatial_dims: number of spatial dimensions.
        channels: number of channels C.
        reduction: reduction ratio of the shared MLP.
    """

    def __init__(self, spatial_dims: int, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.avg_pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.max_pool = Pool[Pool.ADAPTIVEMAX, spatial_dims](1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        z_avg = self.mlp(self.avg_pool(x).view(b, c))
        z_max = self.mlp(self.max_pool(x).view(b, c))
        weights = torch.sigmoid(z_avg + z_max).view([b, c] + [1] * (x.ndim - 2))
        return x * weights


class SpatialAttention(nn.Module):
    """CBAM spatial attention, section 3.3 (eq. 12-13).

    ``X_S = sigma(f_7x7([mean_c(X); max_c(X)])) * X``: a single 7x7 convolution over the channel-wise mean
    and max maps.

    Args:
        spatial_dims: number of spatial dimensions.
        kernel_size: kernel of the convolution (7 in the paper).
    """

    def __init__(self, spatial_dims: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = Conv[Conv.CONV, spatial_dims](2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        descriptors = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(descriptors))


class CBAM(nn.Sequential):
    """Convolutional block attention module: :class:`ChannelAttention` then :class:`SpatialAttention` (eq. 9-13).

    Args:
        spatial_dims: number of spatial dimensions.
        channels: number of channels.
        reduction: reduction ratio of the channel MLP (16 in the paper).
        kernel_size: kernel of the spatial-attention convolution (7 in the paper).
    """

    def __init__(self, spatial_dims: int, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(spatial_dims, channels, reduction)
        self.spatial = SpatialAttention(spatial_dims, kernel_size)


class AttentionGate(nn.Module):
    """Attention gate of the CLAE module, section 3.3 (eq. 14-15).

    ``alpha = sigmoid(W_a * ReLU(W_1 X_S + W_2 X_U))`` and ``X_G = alpha * X_S``, with 1x1 convolutions
    ``W_1: C_s -> F``, ``W_2: C_u -> F`` and ``W_a: F -> 1``. Unlike MONAI's ``AttentionBlock`` there is no
    batch norm, because the equation has none.

    Args:
        spatial_dims: number of spatial dimensions.
        skip_channels: channels of the gated (skip) feature X_S.
        gating_channels: channels of the upsampled decoder feature X_U.
        inter_channels: intermediate channels F.
    """

    def __init__(self, spatial_dims: int, skip_channels: int, gating_channels: int, inter_channels: int) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.w_skip = conv(skip_channels, inter_channels, 1)
        self.w_gate = conv(gating_channels, inter_channels, 1)
        self.w_alpha = conv(inter_channels, 1, 1)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        alpha = torch.sigmoid(self.w_alpha(torch.relu(self.w_skip(skip) + self.w_gate(gate))))
        return skip * alpha


class AdaptiveFeatureFusion(nn.Module):
    """Adaptive Feature Fusion (AFF) module, section 3.2 (eq. 1-8).

    ``side`` is the previous AFF output X^l, ``main`` the main-path feature X_U of the current level::

        X_SE    = Dropout(SE(DSConv(side)))                       # eq. 1-5, the side branch
        X_fused = ReLU(BN(Conv3x3(Concat(X_SE, main))))           # eq. 6-7, 2C -> fused_channels
        X_AFF   = ReLU(BN(Conv3x3(SE(X_fused))))                  # eq. 8,   fused_channels -> C

    The paper leaves the fusion width and the resolution change of the side branch open;
    :class:`~custom.networks.nunet.NUNetEncoder` documents the values N-Unet uses.

    Args:
        spatial_dims: number of spatial dimensions.
        side_channels: channels of the previous AFF output.
        channels: channels C of the main-path feature and of the output.
        fused_channels: output channels of the eq. 7 convolution (input channels of eq. 8).
        side_strides: stride of the side branch's depthwise convolution; 2 brings the previous AFF
            output to the resolution of the current (pooled) level.
        dropout: dropout rate of the side branch (0.2 in the paper).
    """

    def __init__(
        self,
        spatial_dims: int,
        side_channels: int,
        channels: int,
        fused_channels: int,
        side_strides: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.side = nn.Sequential(
            DepthwiseSeparableConv(spatial_dims, side_channels, channels, strides=side_strides),
            SqueezeExcitation(spatial_dims, channels),
            # element-wise dropout on the side branch only: the main path reaches the fusion intact
            nn.Dropout(dropout),
        )
        self.fuse = nn.Sequential(
            ConvBNReLU(spatial_dims, 2 * channels, fused_channels),
            SqueezeExcitation(spatial_dims, fused_channels),
            ConvBNReLU(spatial_dims, fused_channels, channels),
        )

    def forward(self, side: torch.Tensor, main: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.side(side), main], dim=1))


class CrossLevelAttention(nn.Module):
    """Cross-Level Attention Enhancement (CLAE) module, section 3.3: :class:`CBAM` then :class:`AttentionGate`.

    The skip feature X is refined by CBAM (eq. 9-13) into X_S, which the attention gate (eq. 14-15)
    weights with coefficients computed from X_S and the upsampled decoder feature X_U. The returned
    X_G replaces the plain skip connection of the U-Net decoder stage.

    Args:
        spatial_dims: number of spatial dimensions.
        skip_channels: channels of the skip feature X.
        up_channels: channels of the upsampled decoder feature X_U.
        inter_channels: intermediate channels F of the attention gate.
        reduction: reduction ratio of CBAM's channel MLP (16 in the paper).
        kernel_size: kernel of CBAM's spatial convolution (7 in the paper).
    """

    def __init__(
        self,
        spatial_dims: int,
        skip_channels: int,
        up_channels: int,
        inter_channels: int,
        reduction: int = 16,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        self.cbam = CBAM(spatial_dims, skip_channels, reduction, kernel_size)
        self.gate = AttentionGate(spatial_dims, skip_channels, up_channels, inter_channels)

    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return self.gate(self.cbam(skip), up)


class ClassificationHead(nn.Sequential):
    """Image-level head on the bottleneck, section 3.4: GAP -> FC in->1024 -> ReLU -> FC 1024->num_classes.

    ``dropout`` (0 in the paper) drops units of the pooled feature and of the hidden layer, as in the
    fully connected classifiers of AlexNet and VGG: the head has 0.5 M weights for a few hundred
    training images per class, and its validation AUC peaks long before the segmentation does.
    The dropout layers hold no weights, so checkpoints load with any rate.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: bottleneck channels (512 in the paper).
        num_classes: number of classes (raw logits out).
        hidden_channels: width of the hidden layer (1024 in the paper).
        dropout: dropout rate before each fully connected layer (0: none, the paper).
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, num_classes: int, hidden_channels: int = 1024, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.flatten = nn.Flatten()
        self.drop1 = nn.Dropout(dropout)
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        self.relu = nn.ReLU(inplace=True)
        self.drop2 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_channels, num_classes)


class PooledLevels(nn.Module):
    """Global average pooling of several feature maps, concatenated along channels: ``[GAP(F_1), ..., GAP(F_k)]``.

    Feeds a :class:`ClassificationHead` with more than the bottleneck (whose own pooling is then the
    identity on the ``1 x 1`` result): a U-Net's bottleneck alone is a coarse, heavily downsampled
    view, while its decoder levels carry the lesion evidence the segmentation is built from (the
    classifier of Aumente-Maestro et al. likewise reads encoder, bottleneck and decoder features; see
    :class:`custom.networks.mt_unetpp.MultiScaleClassificationHead` for the citation).

    Returns (forward):
        ``(B, sum of the channels, 1, ...)``, so spatial dims stay for the head's pooling.
    """

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        self.pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.pool(feature) for feature in features], dim=1)
