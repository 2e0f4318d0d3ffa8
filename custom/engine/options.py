"""The training options checked before any work starts, each failure one line naming the key and what it allows.

Without these checks a bad value surfaces late and far from its cause: a spatial size the network
cannot halve four times fails in the decoder after the data is cached, a zero batch size inside the
data loader, a negative learning rate trains backwards without a word.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import torch
from torch import nn

from custom.errors import InputError
from custom.networks.csb import check_csb_mode


def check_device(device: str | torch.device, option: str = "--device") -> torch.device:
    """``device`` as a ``torch.device``; :class:`InputError` for a name torch does not know or a GPU this machine lacks."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"{option} {device!r}: not a device name ({e}); use cpu or cuda.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"{option} {device}: this machine has no usable CUDA device; use --device cpu.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"{option} {device}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    return dev


def _positive_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(f"--{key} {value!r}: expected a whole number of at least 1.")
    return int(value)


def check_spatial_size(spatial_size: Sequence[int], network: nn.Module | None = None) -> bool:
    """Raises :class:`InputError` unless ``spatial_size`` is two positive whole numbers, each a multiple of the
    ``network``'s ``size_divisor`` when it has one (N-Unet: 16); returns True so configs can list it."""
    if (
        isinstance(spatial_size, (str, bytes))
        or not isinstance(spatial_size, Sequence)
        or len(spatial_size) != 2
        or not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in spatial_size)
    ):
        raise InputError(f"--spatial_size {spatial_size!r}: expected two positive whole numbers, e.g. [256,256].")
    divisor = getattr(network, "size_divisor", None)
    if divisor and any(s % divisor for s in spatial_size):
        fitted = [max(divisor, round(s / divisor) * divisor) for s in spatial_size]
        raise InputError(
            f"--spatial_size {list(spatial_size)}: each side must be a multiple of {divisor} for this network "
            f"(it halves the image {int(math.log2(divisor))} times); try {fitted}."
        )
    return True


def check_training_options(
    spatial_size: Sequence[int],
    batch_size: int,
    epochs: int,
    val_interval: int,
    num_classes: int,
    learning_rate: float,
    csb_mode: str,
    network: nn.Module | None = None,
) -> bool:
    """Raises :class:`InputError` for the first option out of range; returns True so configs can list it.

    ``network``: its ``size_divisor`` (N-Unet: 16), when it has one, must divide every side of
    ``spatial_size``.
    """
    check_spatial_size(spatial_size, network)
    for key, value in (("batch_size", batch_size), ("epochs", epochs), ("val_interval", val_interval)):
        _positive_int(key, value)
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes not in (2, 3):
        raise InputError(
            f"--num_classes {num_classes!r}: expected 2 (normal, lesion) or 3 (normal, benign, malignant)."
        )
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, Real)
        or not (math.isfinite(learning_rate) and learning_rate > 0)
    ):
        raise InputError(f"--learning_rate {learning_rate!r}: expected a finite number above 0, e.g. 1e-4.")
    check_csb_mode(csb_mode)
    return True
