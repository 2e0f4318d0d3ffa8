"""2D deformable convolution (Dai et al. 2017, "Deformable convolutional networks", DCNv1) in plain PyTorch.

ACSNet's DSAModule (section 3.3, eq. 4 and 7) uses deformable convolutions. The usual
implementation is ``torchvision.ops.deform_conv2d``, but torchvision cannot be imported beside this
project's torch, so :func:`deform_conv2d` reproduces its semantics (one offset group, no modulation
mask) with ``torch.nn.functional.grid_sample``: every kernel tap of every output pixel samples the
input bilinearly at its regular grid position plus a learned offset, and the samples are contracted
with the kernel weights as a regular convolution would contract its unfolded patches.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

__all__ = ["DeformConv2d", "deform_conv2d"]


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """Deformable 2D convolution with the argument layout of ``torchvision.ops.deform_conv2d``.

    Tap ``k = i * kw + j`` of output pixel ``(y, x)`` reads the input at
    ``(y * stride - padding + i * dilation + offset[:, 2k], x * stride - padding + j * dilation + offset[:, 2k + 1])``
    by bilinear interpolation; positions outside the image read zeros (torchvision's convention).

    Args:
        input: (B, C_in, H, W).
        offset: (B, 2 * kh * kw, H_out, W_out), the (dy, dx) pair of every kernel tap in pixels.
        weight: (C_out, C_in, kh, kw).
        bias: (C_out,) or None.
        stride, padding, dilation: as for ``torch.nn.functional.conv2d``.

    Returns:
        (B, C_out, H_out, W_out).
    """
    batch, channels, height, width = input.shape
    out_channels, _, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    taps = kh * kw
    if offset.shape != (batch, 2 * taps, out_h, out_w):
        raise ValueError(f"offset must have shape {(batch, 2 * taps, out_h, out_w)}, got {tuple(offset.shape)}.")

    # positions are computed and sampled in (at least) float32: half precision cannot address
    # sub-pixel positions in larger maps (its step is 1/8 pixel beyond 128), e.g. under autocast
    dtype = torch.promote_types(offset.dtype, torch.float32)
    # regular sampling grid in input pixel coordinates: (taps, H_out, W_out) for y and x
    ys = torch.arange(out_h, device=input.device, dtype=dtype) * sh - ph
    xs = torch.arange(out_w, device=input.device, dtype=dtype) * sw - pw
    ky, kx = torch.meshgrid(
        torch.arange(kh, device=input.device, dtype=dtype) * dh,
        torch.arange(kw, device=input.device, dtype=dtype) * dw,
        indexing="ij",
    )
    grid_y = ky.reshape(taps, 1, 1) + ys.view(1, out_h, 1)
    grid_x = kx.reshape(taps, 1, 1) + xs.view(1, 1, out_w)
    offset = offset.view(batch, taps, 2, out_h, out_w).to(dtype)
    pos_y = grid_y + offset[:, :, 0]
    pos_x = grid_x + offset[:, :, 1]
    # grid_sample with align_corners=False maps pixel index p to (2p + 1) / size - 1; zero padding
    # makes samples outside the image (and out-of-image bilinear corners) contribute 0, as torchvision does
    grid = torch.stack([(2 * pos_x + 1) / width - 1, (2 * pos_y + 1) / height - 1], dim=-1)
    sampled = F.grid_sample(
        input.to(dtype),
        grid.view(batch, taps * out_h, out_w, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    ).to(input.dtype)
    # (B, C_in * taps, L) in the channel-major order of F.unfold, so the kernel contracts like a convolution
    columns = sampled.view(batch, channels * taps, out_h * out_w)
    out = torch.matmul(weight.reshape(out_channels, channels * taps), columns)
    if bias is not None:
        out = out + bias.view(1, out_channels, 1)
    return out.view(batch, out_channels, out_h, out_w)


class DeformConv2d(nn.Module):
    """Deformable 3x3 (or k x k) convolution, DCNv1 (Dai et al. 2017), the ``DConv`` of ACSNet eq. 4 and 7.

    A regular convolution with the same kernel size, stride, padding and dilation predicts the
    ``2 * k * k`` offsets from the input; it is initialised to zero, so an untrained module is
    exactly a plain convolution with ``weight`` and ``bias`` (as in Dai et al., section 2.1).
    ``weight`` and ``bias`` have the shapes and default initialisation of ``nn.Conv2d``.
    This pure-PyTorch module stands in for ``torchvision.ops.DeformConv2d`` plus its offset
    convolution, which cannot be used here (see the module docstring).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size.
        stride: stride of the convolution and of the offset prediction.
        padding: zero padding; defaults to ``dilation * (kernel_size - 1) // 2`` ("same" for stride 1).
        dilation: spacing of the regular sampling grid.
        bias: learn an additive bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.padding = dilation * (kernel_size - 1) // 2 if padding is None else padding
        self.dilation = dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.offset = nn.Conv2d(in_channels, 2 * kernel_size * kernel_size, kernel_size, stride, self.padding, dilation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s initialisation for the kernel; zero offsets (a plain convolution to start from)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return deform_conv2d(x, self.offset(x), self.weight, self.bias, self.stride, self.padding, self.dilation)
