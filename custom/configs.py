"""Reading bundle configs as ``monai.bundle run`` merges them, for the tools that build parts of a bundle in Python."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monai.bundle import ConfigParser

__all__ = ["bundle_parser"]


def bundle_parser(config_files: str | Sequence[str], overrides: Mapping[str, Any] | None = None) -> ConfigParser:
    """A parser of bundle configs merged in order, then ``overrides`` (as ``monai.bundle run`` merges them)."""
    parser = ConfigParser()
    parser.read_config([config_files] if isinstance(config_files, str) else list(config_files))
    parser.update(dict(overrides or {}))
    return parser
