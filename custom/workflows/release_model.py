"""Releasing one fold of a cross-validation run as the bundle's model, on the command line.

The release itself is :func:`custom.deploy.release.release_from_run`.
"""

from __future__ import annotations

import json

from custom.cli import run as run_command
from custom.deploy.release import release_from_run

__all__ = ["main", "release_model_command"]


def release_model_command(run: str, fold: int = 0, out: str = "bundle/models", note: str = "") -> None:
    """Writes the release of fold ``fold`` of ``run`` into ``out`` and prints its card.

    ``python scripts/release_model.py --run runs/busi_cpu_budget --fold 0 [--out bundle/models]`` writes
    ``<out>/model.pt`` (state dict in float16, loads into the float32 network) and ``<out>/model.json``
    (network, input size, SHA-256, recipe, data, fold, test figures, and how much float16 storage changes
    the masks and decisions on the fold's test images).
    """
    card = release_from_run(run, fold, out, note)
    print(json.dumps(card, indent=2, default=str))


def main() -> None:
    """``nunet-release-model`` and ``scripts/release_model.py``: :func:`release_model_command` on the command line."""
    run_command(release_model_command)
