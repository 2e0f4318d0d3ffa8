"""ACSNet: multi-task breast-tumour segmentation and classification (He et al., Comput. Biol. Med. 2024).

A U-shaped network on a ResNet-18 encoder (stages 1-5) with a gate unit on every skip connection
(section 3.2), DSAModules (deformable convolution + spatial attention, section 3.3) in the two
deepest decoder stages (stages 6-9) and a classification branch that fuses stages 4, 5 and 6 with
channel attention (section 3.1). The parts are separate modules so other networks can reuse them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_norm_layer
from monai.networks.nets import ResNet
from monai.networks.nets.basic_unet import TwoConv

from custom.errors import InputError
from custom.networks.csb import check_num_classes
from custom.networks.deform import DeformConv2d

__all__ = [
    "ACSNet",
    "ACSNetDecoder",
    "DSAModule",
    "DecoderStage",
    "GateUnit",
    "MultiScaleClassifier",
    "PooledChannelAttention",
    "ResNet18Encoder",
]

RELU = ("relu", {"inplace": True})


def group_norm(channels: int) -> tuple:
    """MONAI norm spec for GroupNorm with up to 32 groups (the paper's "GN" gives no group count)."""
    return ("group", {"num_groups": math.gcd(32, channels)})


class ResNet18Encoder(nn.Module):
    """ResNet-18 as the five-stage encoder of ACSNet (section 3.1, "stages 1-5").

    Built from MONAI's :class:`~monai.networks.nets.ResNet` (basic blocks, layers 2-2-2-2, 7x7 stride-2
    stem, max pool, projection shortcuts without bias), whose parameter names are those of
    torchvision's ``resnet18``. At a 256x256 input the stages give 64@128, 64@64, 128@32, 256@16 and
    512@8. The paper starts from ImageNet weights; nothing is downloaded here, so the encoder trains
    from scratch unless ``pretrained_path`` names a local torchvision-layout ResNet-18 state dict
    (its ``fc.*`` entries are ignored).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: image channels (3 for ImageNet weights).
        pretrained_path: optional local ResNet-18 state-dict file.

    Raises:
        InputError: when ``pretrained_path`` does not exist or is not a ResNet-18 state dict.
    """

    out_channels = (64, 64, 128, 256, 512)

    def __init__(self, spatial_dims: int = 2, in_channels: int = 3, pretrained_path: str | None = None) -> None:
        super().__init__()
        resnet = ResNet(
            "basic",
            layers=[2, 2, 2, 2],
            block_inplanes=[64, 128, 256, 512],
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            conv1_t_stride=2,
            feed_forward=False,
            bias_downsample=False,
        )
        if pretrained_path is not None:
            _load_resnet_weights(resnet, pretrained_path)
        self.stages = nn.ModuleList(
            [
                nn.Sequential(resnet.conv1, resnet.bn1, resnet.act),
                nn.Sequential(resnet.maxpool, resnet.layer1),
                resnet.layer2,
                resnet.layer3,
                resnet.layer4,
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def _load_resnet_weights(resnet: ResNet, path: str) -> None:
    if not os.path.isfile(path):
        raise InputError(f"pretrained_path {path!r} does not exist; give a local ResNet-18 state-dict file.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = resnet.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            f"pretrained_path {path!r} is not a torchvision-layout ResNet-18 state dict: "
            f"missing {missing[:4]}, unexpected {unexpected[:4]}."
        )


class GateUnit(nn.Module):
    """Gate unit on a skip connection, section 3.2 (eq. 1-3).

    ``F'_1, F'_2 = sigmoid(Conv(X))`` (two single-channel maps), ``G^1 = GAP(F'_1)``, ``G^2 = GMP(F'_2)``
    and ``Y = Conv3x3(X * G^1 + X * G^2)``. The paper writes only "Conv" for the map predictor; here
    it is Conv3x3 C->C/8 + GN + ReLU then Conv3x3 C/8->2 (the authors' layout as summarised in the
    project's peer notes), and the output convolution is followed by GN and ReLU like every
    convolution of the network (section 3.1).

    Args:
        spatial_dims: number of spatial dimensions.
        channels: channels C of the skip feature (input and output).
        reduction: width ratio of the map predictor's hidden layer.
    """

    def __init__(self, spatial_dims: int, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.maps = nn.Sequential(
            Convolution(spatial_dims, channels, hidden, act=RELU, norm=group_norm(hidden), bias=False),
            Conv[Conv.CONV, spatial_dims](hidden, 2, 3, padding=1),
            nn.Sigmoid(),
        )
        self.avg_pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.max_pool = Pool[Pool.ADAPTIVEMAX, spatial_dims](1)
        self.fuse = Convolution(spatial_dims, channels, channels, act=RELU, norm=group_norm(channels), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.maps(x)
        g1 = self.avg_pool(maps[:, :1])
        g2 = self.max_pool(maps[:, 1:])
        return self.fuse(x * g1 + x * g2)


class DSAModule(nn.Module):
    """Deformable spatial attention module, section 3.3 (eq. 4-7).

    ``X' = DConv(X)``, ``S_1 = sigmoid(Conv3x3(mean_c X'))``, ``S_2 = sigmoid(Conv3x3(max_c X'))`` and
    ``Y = DConv(Cat(X' * S_1, X' * S_2))`` (2C -> C). Both deformable convolutions are 3x3
    (:class:`~custom.networks.deform.DeformConv2d`, DCNv1) followed by GN and ReLU like every
    convolution of the network (section 3.1); the attention convolutions map 1 -> 1 channel.
    Two-dimensional only, as the deformable convolution is.

    Args:
        channels: channels C of the input and output.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.deform = nn.Sequential(
            DeformConv2d(channels, channels, bias=False),
            get_norm_layer(group_norm(channels), spatial_dims=2, channels=channels),
            nn.ReLU(inplace=True),
        )
        self.avg_attention = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Sigmoid())
        self.max_attention = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Sigmoid())
        self.fuse = nn.Sequential(
            DeformConv2d(2 * channels, channels, bias=False),
            get_norm_layer(group_norm(channels), spatial_dims=2, channels=channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.deform(x)
        a1 = x * self.avg_attention(x.mean(dim=1, keepdim=True))
        a2 = x * self.max_attention(x.amax(dim=1, keepdim=True))
        return self.fuse(torch.cat([a1, a2], dim=1))


class DecoderStage(nn.Module):
    """One ACSNet decoder stage (stages 6-9, section 3.1): upsample, gated skip, two convs, optional DSAModule.

    The deeper feature is upsampled bilinearly to the skip's size (the paper says "upsampling" only;
    bilinear interpolation adds no parameters), concatenated with the :class:`GateUnit` output of the
    skip and passed through two Conv3x3 + GN + ReLU (MONAI's ``TwoConv``); stages with a
    :class:`DSAModule` apply it last.

    Args:
        in_channels: channels of the deeper decoder (or bottleneck) feature.
        skip_channels: channels of the encoder skip feature.
        out_channels: output channels.
        dsa: append a DSAModule.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, dsa: bool = False) -> None:
        super().__init__()
        self.gate = GateUnit(2, skip_channels)
        self.conv = TwoConv(
            2, in_channels + skip_channels, out_channels, act=RELU, norm=group_norm(out_channels), bias=False
        )
        self.dsa = DSAModule(out_channels) if dsa else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
        return self.dsa(self.conv(torch.cat([self.gate(skip), x], dim=1)))


class ACSNetDecoder(nn.Module):
    """The four decoder stages 6-9 of ACSNet, deepest first; DSAModules in the ``dsa_stages`` deepest ones.

    Args:
        encoder_channels: channels of encoder stages 1-5 (shallowest first).
        decoder_channels: output channels of decoder stages 6-9.
        dsa_stages: how many of the deepest decoder stages carry a DSAModule (2 in the paper).

    Returns (forward):
        the output of every decoder stage, stage 6 first.
    """

    def __init__(self, encoder_channels: Sequence[int], decoder_channels: Sequence[int], dsa_stages: int = 2) -> None:
        super().__init__()
        skips = list(encoder_channels[-2::-1])
        if len(decoder_channels) != len(skips):
            raise ValueError(
                f"decoder_channels needs {len(skips)} widths (one per skip), got {tuple(decoder_channels)}."
            )
        inputs = [encoder_channels[-1], *decoder_channels[:-1]]
        self.stages = nn.ModuleList(
            DecoderStage(c_in, c_skip, c_out, dsa=i < dsa_stages)
            for i, (c_in, c_skip, c_out) in enumerate(zip(inputs, skips, decoder_channels))
        )

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        x = features[-1]
        outputs = []
        for stage, skip in zip(self.stages, features[-2::-1]):
            x = stage(x, skip)
            outputs.append(x)
        return outputs


class PooledChannelAttention(nn.Module):
    """Channel attention of the classification branch (section 3.1, after Hu et al. [50]).

    The GAP and GMP descriptors are concatenated and mapped by FC 2C -> C/16 -> ReLU -> FC C/16 -> C
    -> sigmoid to channel weights: ``Y = X * sigmoid(FC(ReLU(FC([GAP(X); GMP(X)]))))``. Unlike CBAM's
    channel attention (:class:`custom.networks.blocks.ChannelAttention`, a shared MLP whose outputs
    are summed), one MLP sees both descriptors at once.

    Args:
        spatial_dims: number of spatial dimensions.
        channels: channels C.
        reduction: reduction ratio of the hidden layer.
    """

    def __init__(self, spatial_dims: int, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.max_pool = Pool[Pool.ADAPTIVEMAX, spatial_dims](1)
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        descriptor = torch.cat([self.avg_pool(x).flatten(1), self.max_pool(x).flatten(1)], dim=1)
        return x * self.mlp(descriptor).view(*x.shape[:2], *([1] * (x.ndim - 2)))


class MultiScaleClassifier(nn.Module):
    """Multi-scale classification branch, section 3.1: channel attention per scale, concat, GAP, two FC layers.

    Every input goes through its own :class:`PooledChannelAttention`; features are resized
    (bilinearly) to the size of the first input (stage 5 at 8x8 is upsampled to the 16x16 of stages 4
    and 6), concatenated (256 + 512 + 512 = 1280 channels by default), globally average-pooled and
    classified by FC 1280 -> 640 -> ReLU -> FC 640 -> ``num_classes`` (the hidden width is half the
    concatenation, a choice: the paper gives none). The output is logits; the paper's softmax is in
    the loss and the post-processing.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: channels of each input scale.
        num_classes: number of classes.
        reduction: reduction ratio of the channel attentions.
    """

    def __init__(self, spatial_dims: int, in_channels: Sequence[int], num_classes: int, reduction: int = 16) -> None:
        super().__init__()
        self.attentions = nn.ModuleList(PooledChannelAttention(spatial_dims, c, reduction) for c in in_channels)
        self.pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        total = sum(in_channels)
        self.fc = nn.Sequential(nn.Linear(total, total // 2), nn.ReLU(inplace=True), nn.Linear(total // 2, num_classes))
        self.interp_mode = "bilinear" if spatial_dims == 2 else "trilinear"

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[2:]
        scales = [
            f if f.shape[2:] == size else F.interpolate(f, size=size, mode=self.interp_mode, align_corners=False)
            for f in (attention(f) for attention, f in zip(self.attentions, features))
        ]
        return self.fc(self.pool(torch.cat(scales, dim=1)).flatten(1))


class ACSNet(nn.Module):
    """ACSNet (He et al. 2024, section 3): ResNet-18 U-Net with gate units, DSAModules and a multi-scale classifier.

    ``forward(x)`` returns raw logits ``{"seg": (B, 1, H, W), "cls": (B, num_classes)}`` at the input
    resolution, in training and in eval mode (no auxiliary outputs).

    Choices where the paper is silent (section 3.1 names the stages but gives no widths):

    - Encoder: torchvision-style ResNet-18 (:class:`ResNet18Encoder`), trained from scratch unless a
      local state dict is given; the paper's ImageNet weights cannot be downloaded here.
    - Decoder widths 512, 512, 256, 128 for stages 6-9 (16, 32, 64 and 128 px at a 256 input), so the
      two DSAModules both run at 512 channels. With the more common halving widths 512, 256, 128, 64
      the network has about 30 M parameters and 14 G MACs, far from the reported 42.99 M / 30.96 G;
      these widths give 41.3 M parameters.
    - Upsampling is bilinear (no parameters); stage 9 is at half the input resolution (the ResNet stem
      has stride 2), so the 1x1 segmentation head's logits are upsampled bilinearly to the input size.
    - Each decoder stage: upsample, concat with the gated skip, two Conv3x3 + GN + ReLU, then the
      DSAModule in stages 6 and 7. GroupNorm uses up to 32 groups; convolutions before GN have no bias.
    - Classes: ACSNet classified benign vs malignant with normal images removed. Here normals stay in
      the data as class 0 (``num_classes`` 2: normal/lesion, 3: normal/benign/malignant) and their
      masks are empty; the classifier's last layer simply has ``num_classes`` outputs.
    - LossNet (section 3.4) is part of the loss (:class:`custom.losses.ACSNetLoss`), not of
      the network.

    Measured at 1x3x256x256, 2 classes: 41.33 M parameters (paper 42.99 M, -3.9 %); THOP counts
    27.15 G MACs but does not know :class:`~custom.networks.deform.DeformConv2d`, whose kernels add
    8.74 G when counted like convolutions: 35.89 G against the paper's 30.96 G "FLOPs".

    Args:
        spatial_dims: number of spatial dimensions; only 2 (the deformable convolution is 2D).
        in_channels: image channels.
        num_classes: classes of the classification branch (class 0 = normal).
        pretrained_path: optional local torchvision-layout ResNet-18 state dict for the encoder.
        decoder_channels: output channels of decoder stages 6-9.
        dsa_stages: number of deepest decoder stages with a DSAModule.

    Raises:
        ValueError: for ``spatial_dims != 2``, ``num_classes < 2`` or a wrong number of decoder widths.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 2,
        pretrained_path: str | None = None,
        decoder_channels: Sequence[int] = (512, 512, 256, 128),
        dsa_stages: int = 2,
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise InputError(
                f"ACSNet supports only spatial_dims=2 (its deformable convolutions are 2D), got {spatial_dims}."
            )
        check_num_classes(num_classes)
        self.encoder = ResNet18Encoder(spatial_dims, in_channels, pretrained_path)
        encoder_channels = ResNet18Encoder.out_channels
        self.decoder = ACSNetDecoder(encoder_channels, decoder_channels, dsa_stages)
        self.segmentation_head = nn.Conv2d(decoder_channels[-1], 1, 1)
        # stages 4 and 5 of the encoder and stage 6 (the first decoder stage)
        self.classifier = MultiScaleClassifier(
            spatial_dims, (encoder_channels[3], encoder_channels[4], decoder_channels[0]), num_classes
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(x)
        decoded = self.decoder(features)
        seg = F.interpolate(self.segmentation_head(decoded[-1]), size=x.shape[2:], mode="bilinear", align_corners=False)
        return {"seg": seg, "cls": self.classifier([features[3], features[4], decoded[0]])}
