"""MTL-OCA: multi-task Res-UNet with object contextual attention for breast ultrasound.

Lu, Sun, Wang & Yu, "Automatic joint segmentation and classification of breast ultrasound images via
multi-task learning with object contextual attention", Front. Oncol. 2025, 15:1567577,
section 2. No code was released; this follows the text and, for the attention module, OCRNet
(Yuan, Chen & Wang, ECCV 2020), which the paper builds on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution, ResidualUnit, UpSample
from monai.networks.layers.factories import Conv, Pool

from custom.networks.blocks import ClassificationHead
from custom.networks.csb import check_num_classes

__all__ = ["MTLOCA", "ObjectContextualAttention", "ResUNetBackbone", "ResUpBlock"]


def _group_norm(num_groups: int) -> tuple:
    return ("group", {"num_groups": num_groups})


class ResUpBlock(nn.Module):
    """Res-UNet decoder step (MTL-OCA, section 2.1): Upsample -> concat skip -> residual Conv + GroupNorm unit.

    The deeper feature is brought to the skip's width by a 1x1 convolution before the (non-trainable,
    linear) upsampling, MONAI ``UpSample``'s ``pre_conv``, which is cheaper than convolving after it.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: channels of the deeper feature.
        skip_channels: channels of the encoder skip feature (and of the output).
        num_groups: GroupNorm groups.
    """

    def __init__(self, spatial_dims: int, in_channels: int, skip_channels: int, num_groups: int) -> None:
        super().__init__()
        self.up = UpSample(spatial_dims, in_channels, skip_channels, scale_factor=2, mode="nontrainable")
        self.conv = ResidualUnit(
            spatial_dims, 2 * skip_channels, skip_channels, act="relu", norm=_group_norm(num_groups)
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class ResUNetBackbone(nn.Module):
    """The 3-level Res-UNet backbone of MTL-OCA (section 2.1, Figure 2).

    Encoder level ``l``: a residual unit (two Conv + GroupNorm + ReLU with a 1x1-projected identity,
    MONAI ``ResidualUnit``) whose output is the skip, then max-pooling. A residual bridge at 1/8
    resolution joins the three encoder levels to three :class:`ResUpBlock` decoder levels. The paper
    names the layers but not their widths, the bridge or the activation: ``features`` are the three
    level widths plus the bridge width, and the activation is ReLU (as in OCRNet).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: input channels.
        features: widths of the three encoder levels and of the bridge (four values).
        num_groups: GroupNorm groups (must divide every width).

    Returns (forward):
        the full-resolution decoder feature with ``features[0]`` channels; the input's spatial size
        must be a multiple of 8.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, features: Sequence[int] = (32, 64, 128, 256), num_groups: int = 8
    ) -> None:
        super().__init__()
        if len(features) != 4:
            raise ValueError(f"features needs three level widths and the bridge width, got {tuple(features)}.")
        norm = _group_norm(num_groups)
        widths = [in_channels, *features]
        self.encoder = nn.ModuleList(
            ResidualUnit(spatial_dims, widths[level], widths[level + 1], act="relu", norm=norm) for level in range(3)
        )
        self.pool = Pool[Pool.MAX, spatial_dims](2)
        self.bridge = ResidualUnit(spatial_dims, features[2], features[3], act="relu", norm=norm)
        self.decoder = nn.ModuleList(
            ResUpBlock(spatial_dims, features[level + 1], features[level], num_groups) for level in reversed(range(3))
        )
        self.out_channels = features[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bridge(x)
        for block, skip in zip(self.decoder, reversed(skips)):
            x = block(x, skip)
        return x


class ObjectContextualAttention(nn.Module):
    """Object contextual attention (MTL-OCA, section 2.1, eq. 1-3; OCRNet, Yuan et al. 2020, section 3.2-3.3).

    Given pixel features ``x`` (B, C, *spatial) and K soft object regions ``regions`` (B, K, *spatial)
    with non-negative weights::

        f_k  = sum_i d_ki x_i                              # eq. 1, d_k = regions_k / sum_i regions_ki
        w_ik = softmax_k(<phi(x_i), psi(f_k)> / sqrt(D))   # eq. 2, the pixel-region relation
        y_i  = rho(sum_k w_ik delta(f_k))                  # eq. 3, the object contextual representation
        out  = g([y_i; x_i])                               # augmented representation

    ``phi`` and ``psi`` are two 1x1 Conv + GroupNorm + ReLU layers (C -> D -> D), ``delta`` one (C -> D),
    ``rho`` one (D -> C) and ``g`` one (2C -> out_channels), as in OCRNet (which uses batch norm; GroupNorm
    here matches the backbone). The paper leaves the widths and the normalisation of the regions open:

    - Each region is normalised to unit sum over the pixels, so ``f_k`` is the region's soft-weighted
      mean feature, independent of the lesion's area. OCRNet's spatial softmax of class logits is the
      special case ``regions = exp(logits)``.
    - The relation logits are scaled by ``D ** -0.5`` (OCRNet's scaled dot product).
    - Region features are handled as a length-K sequence with 1D convolutions, so only the pixel
      side depends on ``spatial_dims``.

    Args:
        spatial_dims: number of spatial dimensions of ``x``.
        in_channels: pixel feature channels C.
        key_channels: width D of the pixel-region relation and of the object context.
        out_channels: channels of the augmented representation.
        num_groups: GroupNorm groups (must divide ``key_channels``, ``in_channels`` and ``out_channels``).
        eps: added to each region's total weight, so an empty region yields a zero feature, not NaN.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        key_channels: int,
        out_channels: int,
        num_groups: int = 8,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        norm = _group_norm(num_groups)

        def unit(dims: int, cin: int, cout: int) -> Convolution:
            return Convolution(dims, cin, cout, kernel_size=1, act="relu", norm=norm)

        self.phi = nn.Sequential(
            unit(spatial_dims, in_channels, key_channels), unit(spatial_dims, key_channels, key_channels)
        )
        self.psi = nn.Sequential(unit(1, in_channels, key_channels), unit(1, key_channels, key_channels))
        self.delta = unit(1, in_channels, key_channels)
        self.rho = unit(spatial_dims, key_channels, in_channels)
        self.fuse = unit(spatial_dims, 2 * in_channels, out_channels)
        self.scale = key_channels**-0.5
        self.eps = eps

    def forward(self, x: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        b, _, *spatial = x.shape
        d = regions.flatten(2)  # (B, K, N)
        d = d / (d.sum(dim=2, keepdim=True) + self.eps)
        objects = torch.bmm(d, x.flatten(2).transpose(1, 2)).transpose(1, 2)  # eq. 1: (B, C, K)
        query = self.phi(x).flatten(2).transpose(1, 2)  # (B, N, D)
        relation = torch.softmax(torch.bmm(query, self.psi(objects)) * self.scale, dim=2)  # eq. 2: (B, N, K)
        context = torch.bmm(relation, self.delta(objects).transpose(1, 2))  # (B, N, D)
        context = self.rho(context.transpose(1, 2).reshape(b, -1, *spatial))  # eq. 3
        return self.fuse(torch.cat([context, x], dim=1))


class MTLOCA(nn.Module):
    """MTL-OCA (Lu et al. 2025, section 2): Res-UNet backbone, object contextual attention, MLP classifier.

    ``forward(x)`` returns raw logits ``{"seg": (B, 1, *spatial), "cls": (B, num_classes)}``; in training
    mode also ``"aux_seg": [coarse]``, the coarse mask logits that :class:`custom.losses.MTLOCALoss`
    supervises with weight 0.4 (eq. 5). Data flow (Figure 1)::

        feat   = ResUNetBackbone(x)                                  # section 2.1, Figure 2
        coarse = coarse_head(feat)                                   # soft object regions, supervised
        seg    = seg_head(OCA(feat, regions = [1 - p, p])), p = sigmoid(coarse)   # eq. 1-3
        cls    = MLP(GAP(feat))                                      # on backbone features, not on OCA's output

    Choices where the paper is silent (besides those of :class:`ResUNetBackbone` and
    :class:`ObjectContextualAttention`):

    - K = 2 regions from one sigmoid channel. The bundle's segmentation output is a single lesion
      logit, so the coarse head also predicts one logit and the two soft object regions are
      ``1 - p`` (background) and ``p`` (lesion). This is the two-class softmax of OCRNet with the
      logits ``(0, z)``, so nothing is lost against a two-channel head.
    - Coarse head: 3x3 Conv + GroupNorm + ReLU then a 1x1 convolution, OCRNet's auxiliary head.
      Gradients of the attention flow back into it (OCRNet does not detach the regions either).
    - Final head: a 1x1 convolution on the augmented representation (width ``features[0]``).
    - Classifier: "two layers of MLP" on the backbone's feature maps. The maps are global-average
      pooled first (flattening a full-resolution map would need millions of weights per unit), then
      FC ``features[0] -> cls_hidden`` -> ReLU -> FC ``cls_hidden -> num_classes``: the project's
      :class:`~custom.networks.blocks.ClassificationHead`. The paper uses three classes; ``num_classes``
      follows the bundle (2: normal/lesion, 3: normal/benign/malignant).
    - No dropout (none is mentioned).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: input channels (2: grayscale image and its Gaussian gradient magnitude, section 3.2).
        num_classes: classes of the classifier; class 0 is normal.
        features: backbone widths (three levels and the bridge).
        key_channels: width of the attention's pixel-region relation (default ``features[0]``).
        cls_hidden: hidden width of the classification MLP.
        num_groups: GroupNorm groups (must divide every width).

    Raises:
        ValueError: for ``num_classes < 2`` or ``features`` without four widths.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 2,
        num_classes: int = 2,
        features: Sequence[int] = (32, 64, 128, 256),
        key_channels: int | None = None,
        cls_hidden: int = 128,
        num_groups: int = 8,
    ) -> None:
        super().__init__()
        check_num_classes(num_classes)
        self.backbone = ResUNetBackbone(spatial_dims, in_channels, features, num_groups)
        width = self.backbone.out_channels
        conv1x1 = Conv[Conv.CONV, spatial_dims]
        self.coarse_head = nn.Sequential(
            Convolution(spatial_dims, width, width, act="relu", norm=_group_norm(num_groups)), conv1x1(width, 1, 1)
        )
        self.attention = ObjectContextualAttention(spatial_dims, width, key_channels or width, width, num_groups)
        self.seg_head = conv1x1(width, 1, 1)
        self.classification_head = ClassificationHead(spatial_dims, width, num_classes, hidden_channels=cls_hidden)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features = self.backbone(x)
        coarse = self.coarse_head(features)
        lesion = torch.sigmoid(coarse)
        out: dict[str, torch.Tensor | list[torch.Tensor]] = {
            "seg": self.seg_head(self.attention(features, torch.cat([1 - lesion, lesion], dim=1))),
            "cls": self.classification_head(features),
        }
        if self.training:
            out["aux_seg"] = [coarse]
        return out
