"""The training options checked before any work starts, each failure one line naming the key and what it allows.

Without these checks a bad value surfaces late and far from its cause: a spatial size the network
cannot halve four times fails in the decoder after the data is cached, a zero batch size inside the
data loader, a negative learning rate trains backwards without a word.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import torch
from monai.utils import set_determinism as monai_set_determinism
from torch import nn

from custom.errors import InputError, check_list, is_whole
from custom.networks.csb import check_csb_mode, check_lesion_threshold


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


def check_whole_number(key: str, value: object, least: int = 1) -> int:
    """``value`` as an int; :class:`InputError` naming ``--key`` unless it is a whole number of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
        raise InputError(f"--{key} {value!r}: expected a whole number of at least {least}.")
    return int(value)


def check_override_keys() -> bool:
    """Raises :class:`InputError` for a ``--key`` given to ``monai.bundle run`` that no config file defines.

    MONAI adds an unknown top-level key to the config without a word, so ``--spatial_siz [32,32]`` used
    to train at the default size and exit 0. The check reads the config files and the overrides of
    the ``monai.bundle.run`` call on the stack (runs that build a ``ConfigWorkflow`` directly are
    not checked); keys with ``#`` (a part of an item, such as ``network_def#weights``) may add
    arguments and are left alone. Known are the keys the files define, those their references use (a
    config may leave a key for the command line to give), and those of ``--tracking``'s settings.
    Returns True so configs can list it.
    """
    from monai.bundle import ConfigParser
    from monai.bundle.scripts import run

    frame = sys._getframe(1)
    while frame is not None and frame.f_code is not run.__code__:
        frame = frame.f_back
    if frame is None or frame.f_locals.get("config_file") is None:
        return True
    overrides: Mapping = frame.f_locals.get("override") or {}
    parser = ConfigParser()
    parser.read_config(frame.f_locals["config_file"])
    # defined, or used by a reference (a config may leave a key for the command line to give)
    known = set(parser.get()) | set(re.findall(r"@([A-Za-z_]\w*)", json.dumps(parser.get(), default=str)))
    tracking = frame.f_locals.get("tracking")
    if tracking:  # the tracking settings add their own top-level keys (tracking_uri, experiment_name, ...)
        from monai.bundle.utils import DEFAULT_MLFLOW_SETTINGS

        settings = DEFAULT_MLFLOW_SETTINGS if tracking == "mlflow" else tracking
        if not isinstance(settings, Mapping):
            settings = ConfigParser.load_config_files(settings)
        known |= set(settings.get("configs") or {})
    for key in overrides:
        if "#" in str(key) or key in known:
            continue
        close = difflib.get_close_matches(str(key), sorted(k for k in known if not k.startswith("_")), n=1)
        hint = f"did you mean --{close[0]}?" if close else 'the README\'s "Keys to override" lists them.'
        raise InputError(f"--{key}: no such key in the config files of this run; {hint}")
    return True


def check_spatial_size(spatial_size: Sequence[int], network: nn.Module | None = None) -> bool:
    """Raises :class:`InputError` unless ``spatial_size`` is two positive whole numbers, each a multiple of the
    ``network``'s ``size_divisor`` when it has one (N-Unet: 16); returns True so configs can list it."""
    check_list(
        "--spatial_size", spatial_size, 2, lambda s: is_whole(s, 1), "two positive whole numbers, e.g. [256,256]"
    )
    divisor = getattr(network, "size_divisor", None)
    if divisor and any(s % divisor for s in spatial_size):
        fitted = [max(divisor, round(s / divisor) * divisor) for s in spatial_size]
        raise InputError(
            f"--spatial_size {list(spatial_size)}: each side must be a multiple of {divisor} for this network "
            f"(it halves the image {int(math.log2(divisor))} times); try {fitted}."
        )
    return True


def set_determinism(seed: int | None) -> bool:
    """``monai.utils.set_determinism(seed)`` after checking ``seed`` (null: no seeding), returns True.

    Seeding comes before anything random is built (the network's initial weights), so the seed is
    checked here rather than with the other options, which need the network.
    """
    if seed is not None:
        check_whole_number("seed", seed, least=0)
    monai_set_determinism(seed=seed)
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
    num_workers: int = 0,
    early_stop_patience: int | None = None,
    lesion_threshold: float | None = None,
) -> bool:
    """Raises :class:`InputError` for the first option out of range; returns True so configs can list it.

    ``network``: its ``size_divisor`` (N-Unet: 16), when it has one, must divide every side of
    ``spatial_size``.
    """
    check_spatial_size(spatial_size, network)
    for key, value in (("batch_size", batch_size), ("epochs", epochs), ("val_interval", val_interval)):
        check_whole_number(key, value)
    check_whole_number("num_workers", num_workers, least=0)
    if early_stop_patience is not None:
        check_whole_number("early_stop_patience", early_stop_patience)
    check_lesion_threshold(lesion_threshold)
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
