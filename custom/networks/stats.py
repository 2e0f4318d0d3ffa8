"""Model size and cost as the papers report them: parameter count and THOP multiply-accumulates."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn as nn

from custom.networks import get_network

__all__ = ["count_parameters", "model_stats", "thop_macs"]


def count_parameters(network: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``network``."""
    return sum(p.numel() for p in network.parameters())


def thop_macs(network: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs that ``thop.profile`` counts for one forward pass of a random input of ``input_shape``.

    THOP is what the N-Unet paper reports (as "FLOPs"); it over-counts transposed convolutions and
    batch norm, so only THOP reproduces the paper's figures. It runs in eval mode on a deep copy
    because it leaves ``total_ops``/``total_params`` buffers on the modules it profiles.
    """
    import thop  # an optional tool dependency, imported only when costs are measured

    probe = copy.deepcopy(network).eval()
    with torch.no_grad():
        macs, _ = thop.profile(probe, inputs=(torch.randn(*input_shape),), verbose=False)
    return int(macs)


def model_stats(name: str = "nunet", input_shape: Sequence[int] = (1, 3, 256, 256), **kwargs) -> dict:
    """Parameters and THOP MACs of the registered network ``name`` built with ``kwargs``.

    Returns:
        ``{"network", "kwargs", "input_shape", "params", "params_m", "macs", "macs_g"}``.
    """
    network = get_network(name, **kwargs)
    params = count_parameters(network)
    macs = thop_macs(network, input_shape)
    return {
        "network": name,
        "kwargs": kwargs,
        "input_shape": list(input_shape),
        "params": params,
        "params_m": round(params / 1e6, 4),
        "macs": macs,
        "macs_g": round(macs / 1e9, 4),
    }
