"""Reading bundle configs as ``monai.bundle run`` merges them, for the tools that build parts of a bundle in Python."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

__all__ = ["bundle_parser", "recorded_config_files"]

logger = logging.getLogger("nunet")

# Before 0.9.0 the recipes and peer configs lay in bundle/configs/recipes/ and bundle/configs/peers/; they now lie
# beside train.json as recipe_<name>.json and peer_<name>.json, because MONAI's ConfigWorkflow logs "Not all config
# files are in ..." for every run whose config files are in more than one folder.
_FORMER_FOLDERS = {"recipes": "recipe_", "peers": "peer_"}


def bundle_parser(config_files: str | Sequence[str], overrides: Mapping[str, Any] | None = None) -> ConfigParser:
    """A parser of bundle configs merged in order, then ``overrides`` (as ``monai.bundle run`` merges them)."""
    parser = ConfigParser()
    parser.read_config([config_files] if isinstance(config_files, str) else list(config_files))
    parser.update(dict(overrides or {}))
    return parser


def recorded_config_files(config_files: Sequence[str]) -> list[str]:
    """The config files a run recorded (``run.json``, a model card), each where it lies today.

    A run trained before 0.9.0 names ``configs/recipes/<name>.json`` or ``configs/peers/<name>.json``; when that file
    is gone and ``configs/recipe_<name>.json`` (``peer_<name>.json``) exists, the latter is read. Other paths are kept
    as recorded, so a file that is really missing is still reported by the parser that opens it.
    """
    current = []
    for recorded in map(str, config_files):
        path = Path(recorded)
        prefix = _FORMER_FOLDERS.get(path.parent.name)
        moved = path.parent.parent / f"{prefix}{path.name}" if prefix else None
        if moved is not None and not path.is_file() and moved.is_file():
            logger.info("%s: recorded before the configs were moved; reading %s", recorded, moved)
            recorded = str(moved)
        current.append(recorded)
    return current
