"""The model card: ``model.json`` beside ``model.pt``, what a tool needs to know to run the weights.

A card records the network and its settings, the input size the weights were trained at, the
lesion/normal threshold and the temperature chosen on validation data, and the SHA-256 of the
weights it describes (``write_card`` adds it). Cards are written by the release
(:mod:`custom.deploy.release`), by calibration (:mod:`custom.workflows.crossval`) and after a MONAI
Label training; every tool reads them through :func:`read_card`, which trusts a card only for its own
weights, or through :class:`custom.checkpoints.TrainedModel`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from custom.errors import InputError
from custom.fileio import atomic_write_json
from custom.provenance import file_sha256

__all__ = [
    "CARD_FIELDS",
    "card_path",
    "check_card",
    "read_card",
    "stored_card",
    "training_run_input_size",
    "write_card",
]

CARD_SUFFIX = ".json"  # model.pt -> model.json


def card_path(ckpt_path: str | os.PathLike) -> Path:
    """The card of a checkpoint: the same name with ``.json`` (``models/model.pt`` -> ``models/model.json``)."""
    return Path(ckpt_path).with_suffix(CARD_SUFFIX)


def read_card(ckpt_path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any] | None:
    """The card of ``ckpt_path`` (None when it has none), checked field by field (:func:`check_card`).

    The card records the SHA-256 of its weights: weights that differ are damaged (a truncated copy, a
    flipped bit) or were replaced, and are refused in one line rather than run, with or without the
    card's threshold and size. ``sha256``: the weights' hash when the caller has it already.
    """
    card = card_path(ckpt_path)
    if not (card.is_file() and Path(ckpt_path).is_file()):
        return None
    try:
        content = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{card}: unreadable model card ({e}).") from e
    check_card(content, card)
    if content["weights"]["sha256"] != (sha256 or file_sha256(ckpt_path)):
        raise InputError(
            f"{ckpt_path}: its SHA-256 is not the one its model card {card} records: the weights are damaged or "
            "were replaced; restore them, or remove the card if these are other weights on purpose."
        )
    return content


def stored_card(ckpt_path: str | os.PathLike) -> dict[str, Any]:
    """The card beside ``ckpt_path`` as stored, unchecked: ``{}`` when there is none or it is not a JSON object.

    For the tool that replaces a card (a MONAI Label training), which keeps a record of the weights the
    old card described whether or not they are still there.
    """
    card = card_path(ckpt_path)
    try:
        content = json.loads(card.read_text(encoding="utf-8")) if card.is_file() else {}
    except ValueError:  # a broken card is replaced like a stale one
        content = {}
    return content if isinstance(content, dict) else {}


def _whole(value: Any, least: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _probability(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0


# every field a tool reads from a card: what it must be (None is always allowed: the field is not known)
CARD_FIELDS: dict[str, tuple[Any, str]] = {
    "network": (lambda v: isinstance(v, str) and bool(v), "a network name"),
    "spatial_size": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(_whole(s) for s in v),
        "two positive whole numbers, e.g. [96, 96]",
    ),
    "in_channels": (_whole, "a whole number of at least 1"),
    "num_classes": (lambda v: _whole(v, 2), "a whole number of at least 2"),
    "csb_mode": (lambda v: isinstance(v, str), "a CSB mode name"),
    # the network checks the name (custom.networks.nunet.CLASSIFIER_INPUTS), as it checks csb_mode's
    "classifier_input": (
        lambda v: isinstance(v, str) and bool(v),
        "what N-Unet's head reads: 'bottleneck' or 'decoder'",
    ),
    "lesion_threshold": (_probability, "null or a probability in [0, 1]"),
    "calibration": (lambda v: isinstance(v, dict), "an object"),
    "trained_with": (lambda v: isinstance(v, dict), "an object"),
    "test_metrics": (lambda v: isinstance(v, dict), "an object"),
    "half_storage_check": (lambda v: isinstance(v, dict), "an object"),
    "note": (lambda v: isinstance(v, str), "a text"),
}


def check_card(content: Any, card: str | os.PathLike) -> None:
    """Raises :class:`InputError` naming ``card`` and the field unless ``content`` is a model card every tool can
    read: a JSON object whose ``weights`` object records the weights' ``sha256`` and whose every known field
    (:data:`CARD_FIELDS`) has its type and range. A threshold of ``true`` or ``"0.4"`` used to be taken as a
    number (or to stop with a traceback); a card that is a list, to stop with one."""
    if not isinstance(content, dict):
        raise InputError(f"{card}: a model card is a JSON object, this one is a {type(content).__name__}.")
    weights = content.get("weights")
    if not (isinstance(weights, dict) and isinstance(weights.get("sha256"), str)):
        raise InputError(f"{card}: 'weights' must be an object with the weights' 'sha256' (written by the tools).")
    for field, (valid, expected) in CARD_FIELDS.items():
        value = content.get(field)
        if value is not None and not valid(value):
            raise InputError(f"{card}: '{field}' is {json.dumps(value)}; expected {expected}.")


def write_card(ckpt_path: str | os.PathLike, content: Mapping[str, Any]) -> dict[str, Any]:
    """Writes the card of the checkpoint at ``ckpt_path`` (``content`` plus the weights' size and SHA-256)."""
    weights = Path(ckpt_path)
    stored = {"file": weights.name, "bytes": weights.stat().st_size, "sha256": file_sha256(weights)}
    card = {**content, "weights": {**content.get("weights", {}), **stored}}
    atomic_write_json(card_path(weights), card)
    return card


def training_run_input_size(ckpt_path: str | os.PathLike) -> list[int] | None:
    """``spatial_size`` of the last invocation in the ``provenance.json`` of the checkpoint's run folder, or None.

    Every ``model.pt`` a training run saves has it beside it: the input size of weights without a card.
    """
    record = Path(ckpt_path).parent / "provenance.json"
    try:
        runs = json.loads(record.read_text()).get("runs") or [{}]
        size = runs[-1].get("resolved", {}).get("spatial_size")
    except (OSError, ValueError, AttributeError):
        return None
    return list(size) if isinstance(size, list) and len(size) == 2 else None


def training_run_classifier_input(ckpt_path: str | os.PathLike) -> str | None:
    """What the classification head of the network in the checkpoint's training run reads (``network_def``'s
    ``classifier_input``, a reference to a top-level key resolved through the run's record), or None.

    Read from the last invocation in the ``provenance.json`` beside the checkpoint, as
    :func:`training_run_input_size` reads the input size; None where there is no record or its network has no
    such option (a peer)."""
    record = Path(ckpt_path).parent / "provenance.json"
    try:
        run = (json.loads(record.read_text()).get("runs") or [{}])[-1]
        value = run.get("config", {}).get("network_def", {}).get("classifier_input")
        if isinstance(value, str) and value.startswith("@"):
            value = run.get("resolved", {}).get(value[1:])
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None
