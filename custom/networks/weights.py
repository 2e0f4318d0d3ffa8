"""Loading a trained checkpoint into a network: safely (``weights_only=True``) and only when finite."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn as nn

from custom.engine.sanity import check_finite_weights
from custom.errors import InputError


def load_model_weights(network: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Loads the network weights of a bundle checkpoint into ``network`` (safely: ``weights_only=True``).

    ``model.pt`` written by ``CheckpointSaver`` holds the state dict itself; a checkpoint of several
    objects (network, optimiser, ...) nests it under ``"model"`` or ``"network"``.
    """
    if not os.path.isfile(path):
        raise InputError(f"checkpoint {os.fspath(path)!r} does not exist.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "network"):
        if isinstance(state.get(key), Mapping):
            state = state[key]
            break
    check_finite_weights(state, os.fspath(path))
    network.load_state_dict(state)
    return network
