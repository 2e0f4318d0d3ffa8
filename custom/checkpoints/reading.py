"""Reading a checkpoint's weights and loading them into a network: safely (``weights_only=True``), finite, and
of this network.

Every tool that loads weights (inference, evaluation, export, the report, fine-tuning through
``get_network(weights=...)``) goes through :func:`read_weights` and :func:`load_weights`, so a missing,
truncated or foreign file, a checkpoint of another network or of another class count stops in one
line naming the file, never with PyTorch's traceback (whose advice for a pickle, ``weights_only=False``,
would run arbitrary code from the file). Weights holding NaN or infinity (a diverged training's
checkpoint, which would give empty masks and one constant answer, indistinguishable from real ones)
are refused the same way (:func:`check_finite_weights`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import torch
import torch.nn as nn

from custom.errors import InputError

__all__ = ["check_finite_weights", "load_model_weights", "load_weights", "non_finite_tensors", "read_weights"]


def non_finite_tensors(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of a state dict holding a NaN or an infinity."""
    return [
        name
        for name, value in state.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def check_finite_weights(state: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Raises :class:`InputError` naming ``source`` when any weight of ``state`` is NaN or infinite."""
    bad = non_finite_tensors(state)
    if bad:
        raise InputError(
            f"{os.fspath(source)}: {len(bad)} weight tensors hold NaN or infinite values (first: {bad[0]}); the "
            "checkpoint comes from a diverged training and would give meaningless masks and classes; use an "
            "earlier checkpoint."
        )


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The network state dict in the checkpoint at ``path``, checked finite.

    ``model.pt`` written by training holds the state dict itself (or under ``"model"``); a training
    checkpoint (``checkpoint_epoch=N.pt``: network, optimiser, ...) holds it under ``"network"``,
    and is accepted too.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"checkpoint {path!r} does not exist.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols point at weights_only=False too
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for a damaged or foreign file
        raise InputError(
            f"checkpoint {path!r} is not a readable PyTorch weights file (truncated, damaged or another format); "
            "use the model.pt written by training."
        ) from None
    if isinstance(state, Mapping):
        for key in ("model", "network"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        what = f"keys {', '.join(map(str, list(state)[:4]))}" if isinstance(state, Mapping) else type(state).__name__
        raise InputError(
            f"checkpoint {path!r} holds no network weights ({what}); use the model.pt written by training."
        )
    check_finite_weights(state, path)
    return dict(state)


def load_weights(network: nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> nn.Module:
    """Loads ``state`` (read from ``path``) into ``network`` after checking that it is this network's."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unknown = [k for k in state if k not in expected]
    if missing or unknown:
        raise InputError(
            f"checkpoint {os.fspath(path)!r} holds the weights of another network ({len(missing)} of this network's "
            f"{len(expected)} tensors missing{f', e.g. {missing[0]!r}' if missing else ''}; {len(unknown)} unknown"
            f"{f', e.g. {unknown[0]!r}' if unknown else ''}); load it with the network_def (or peer config) it was "
            "trained with."
        )
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        key, found, wanted = wrong[0]
        raise InputError(
            f"checkpoint {os.fspath(path)!r}: {key!r} has shape {found} where this network has {wanted} "
            f"({len(wrong)} tensors differ); it was trained with other settings "
            "(num_classes, in_channels, classifier_input or widths)."
        )
    network.load_state_dict(state)
    return network


def load_model_weights(network: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Loads the network weights of the checkpoint at ``path`` into ``network`` (:func:`read_weights`, then
    :func:`load_weights`)."""
    return load_weights(network, read_weights(path), path)
