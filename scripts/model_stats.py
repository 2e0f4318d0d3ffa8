"""Prints parameters and THOP MACs of registered networks as JSON.

python scripts/model_stats.py                       # N-Unet and all of custom.networks.ABLATIONS
python scripts/model_stats.py --ablations=False
python scripts/model_stats.py --name=nunet --input_shape=1,1,256,256 --in_channels=1
python scripts/model_stats.py --all                 # every registered network at its paper input
"""

from __future__ import annotations

import json

from custom.cli import run as run_command
from custom.networks import ABLATIONS
from custom.networks.stats import all_model_stats, model_stats


def main(
    name: str = "nunet", input_shape: tuple = (1, 3, 256, 256), ablations: bool = True, all: bool = False, **kwargs
) -> None:
    """Measures ``name`` built with ``kwargs``; with ``ablations`` (N-Unet only) also each entry of ABLATIONS.

    ``all`` instead measures every network of ``custom.networks.NETWORKS`` at its own input shape
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


if __name__ == "__main__":
    run_command(main)
