"""The size of the registered networks on the command line: parameters and THOP MACs, as JSON.

The measurements are :mod:`custom.networks.stats`.
"""

from __future__ import annotations

import json
from typing import Any

from custom.cli import run as run_command
from custom.networks import ABLATIONS
from custom.networks.stats import all_model_stats, model_stats

__all__ = ["main", "model_stats_command"]


def model_stats_command(
    name: str = "nunet", input_shape: tuple = (1, 3, 256, 256), ablations: bool = True, all: bool = False, **kwargs: Any
) -> None:
    """Measures ``name`` built with ``kwargs``; with ``ablations`` (N-Unet only) also each entry of ABLATIONS.

    ``python scripts/model_stats.py`` (N-Unet and all of ``custom.networks.ABLATIONS``),
    ``--ablations=False``, ``--name=nunet --input_shape=1,1,256,256 --in_channels=1``. ``all`` instead
    measures every network of ``custom.networks.NETWORKS`` at its own input shape
    (``custom.networks.stats.INPUT_SHAPES``) and ignores the other arguments.
    """
    if all:
        print(json.dumps({"networks": all_model_stats()}, indent=2))
        return
    report = {"model": model_stats(name, tuple(input_shape), **kwargs)}
    if ablations and name == "nunet":
        report["ablations"] = {
            variant: model_stats(name, tuple(input_shape), **{**kwargs, **switches})
            for variant, switches in ABLATIONS.items()
        }
    print(json.dumps(report, indent=2))


def main() -> None:
    """``nunet-model-stats`` and ``scripts/model_stats.py``: :func:`model_stats_command` on the command line."""
    run_command(model_stats_command)
