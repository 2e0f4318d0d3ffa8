"""Building a bundle's network from its configs and loading a trained checkpoint into it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn as nn
from monai.bundle import ConfigParser

from custom.networks.weights import load_model_weights


def bundle_parser(config_files: str | Sequence[str], overrides: Mapping[str, Any] | None = None) -> ConfigParser:
    """A parser of bundle configs merged in order, then ``overrides`` (as ``monai.bundle run`` merges them)."""
    parser = ConfigParser()
    parser.read_config([config_files] if isinstance(config_files, str) else list(config_files))
    parser.update(dict(overrides or {}))
    return parser


def network_from_config(parser: ConfigParser, ckpt_path: str | os.PathLike | None = None) -> nn.Module:
    """The parser's ``network_def`` in eval mode on the CPU, with the weights of ``ckpt_path`` when given."""
    network = parser.get_parsed_content("network_def")
    if ckpt_path is not None:
        load_model_weights(network, ckpt_path)
    return network.eval()
