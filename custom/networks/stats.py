"""Model size and cost as the papers report them: parameter count and THOP multiply-accumulates."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn as nn

from custom.errors import InputError
from custom.networks import NETWORKS, get_network

__all__ = ["INPUT_SHAPES", "all_model_stats", "count_parameters", "model_stats", "thop_macs"]

# The input every registered network is measured at: its own image channels and the input size of
# the paper that reports it (the N-Unet paper for N-Unet and its baselines, ACSNet's, Aumente-Maestro
# et al.'s for MT-UNet++ on grayscale, MTL-OCA's on grayscale plus gradient magnitude).
INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "nunet": (1, 3, 256, 256),
    "acsnet": (1, 3, 256, 256),
    "mt_unetpp": (1, 1, 128, 128),
    "mtl_oca": (1, 2, 128, 128),
    "unet": (1, 3, 256, 256),
    "attention_unet": (1, 3, 256, 256),
    "unetr": (1, 3, 256, 256),
    "swin_unetr": (1, 3, 256, 256),
}


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


def all_model_stats() -> dict[str, dict]:
    """:func:`model_stats` of every registered network at its :data:`INPUT_SHAPES` entry (``in_channels`` from it).

    Raises:
        InputError: when a registered network has no entry in :data:`INPUT_SHAPES`. A network whose
            module cannot be imported raises its import error: none is skipped.
    """
    missing = sorted(set(NETWORKS) - set(INPUT_SHAPES))
    if missing:
        raise InputError(f"no input shape for network(s) {missing}: add them to custom.networks.stats.INPUT_SHAPES.")
    return {name: model_stats(name, INPUT_SHAPES[name], in_channels=INPUT_SHAPES[name][1]) for name in NETWORKS}
