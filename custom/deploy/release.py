"""The released model: compact weights plus a card that records how to run them and what they scored.

``bundle/models/model.pt`` holds the network's state dict stored in float16 (half the size; it loads
into the float32 network unchanged, ``load_state_dict`` casts) and ``bundle/models/model.json`` what
a user and the configs need to know about it: the network and its settings, the input size it was
trained at, the SHA-256 of the weights, the recipe, data and fold, the measured test figures, and
the check that float16 storage does not change the masks or decisions.

``inference.json`` reads the input size from the card (:func:`trained_input_size`) when the card
belongs to the checkpoint it runs (same SHA-256), so the released model is run at the size it was
trained at while any other checkpoint keeps the config's size.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from custom.deploy.ensemble import CheckpointSpec, checkpoint_paths
from custom.errors import InputError
from custom.fileio import atomic_file, atomic_write_json, check_not_an_input
from custom.networks.csb import csb_gate, predicted_class
from custom.provenance import file_sha256

logger = logging.getLogger("nunet")

CARD_SUFFIX = ".json"  # model.pt -> model.json


def card_path(ckpt_path: str | os.PathLike) -> Path:
    """The card of a checkpoint: the same name with ``.json`` (``models/model.pt`` -> ``models/model.json``)."""
    return Path(ckpt_path).with_suffix(CARD_SUFFIX)


def read_card(ckpt_path: str | os.PathLike) -> dict[str, Any] | None:
    """The card of ``ckpt_path`` (None when it has none), checked field by field (:func:`check_card`).

    The card records the SHA-256 of its weights: weights that differ are damaged (a truncated copy, a
    flipped bit) or were replaced, and are refused in one line rather than run, with or without the
    card's threshold and size.
    """
    card = card_path(ckpt_path)
    if not (card.is_file() and Path(ckpt_path).is_file()):
        return None
    try:
        content = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{card}: unreadable model card ({e}).") from e
    check_card(content, card)
    if content["weights"]["sha256"] != file_sha256(ckpt_path):
        raise InputError(
            f"{ckpt_path}: its SHA-256 is not the one its model card {card} records: the weights are damaged or "
            "were replaced; restore them, or remove the card if these are other weights on purpose."
        )
    return content


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


def trained_input_size(ckpt_path: CheckpointSpec, default: Sequence[int]) -> list[int]:
    """The input size the weights of ``ckpt_path`` were trained at, else ``default`` with a warning.

    Read from the checkpoint's card, or else from the training run that wrote it (its
    ``provenance.json``, beside every ``model.pt`` a training run saves): a model trained at 32x32 and
    run at 256x256 gives masks without a word of warning. For several checkpoints (an ensemble,
    :func:`custom.deploy.ensemble.checkpoint_paths`) every one that records a size must record the same.
    """
    sizes = {}
    for path in checkpoint_paths(ckpt_path):
        size = (read_card(path) or {}).get("spatial_size") or _training_run_input_size(path)
        if size:
            sizes[str(path)] = [int(s) for s in size]
        elif Path(path).is_file():
            logger.warning(
                "%s: no model card or training run records its input size; running at %s (set --spatial_size "
                "to the size it was trained at).",
                path,
                list(default),
            )
    if len({tuple(s) for s in sizes.values()}) > 1:
        listed = ", ".join(f"{p}: {s}" for p, s in sizes.items())
        raise InputError(f"--ckpt_path: the checkpoints were trained at different input sizes ({listed}).")
    return next(iter(sizes.values()), [int(s) for s in default])


def warn_if_other_size(ckpt_path: CheckpointSpec, spatial_size: Sequence[int]) -> bool:
    """Warns when ``spatial_size`` is not the size the checkpoint's card or training run records; returns True.

    Evaluation takes its input size from the training configs given to it, so a run of the budget
    recipe (96x96) evaluated without ``recipes/cpu_budget.json`` ran at 256x256 without a word. Another
    size can be meant (the networks are fully convolutional), hence a warning, not an error.
    """
    for path in checkpoint_paths(ckpt_path):
        recorded = (read_card(path) or {}).get("spatial_size") or _training_run_input_size(path)
        if recorded and [int(s) for s in recorded] != [int(s) for s in spatial_size]:
            logger.warning(
                "%s was trained at %s and is evaluated at %s: pass --spatial_size %s (or the recipe it was "
                "trained with) unless this is meant.",
                path,
                list(recorded),
                list(spatial_size),
                list(recorded),
            )
    return True


def _training_run_input_size(ckpt_path: str | os.PathLike) -> list[int] | None:
    """``spatial_size`` of the last invocation in the ``provenance.json`` of the checkpoint's run folder, or None."""
    record = Path(ckpt_path).parent / "provenance.json"
    try:
        runs = json.loads(record.read_text()).get("runs") or [{}]
        size = runs[-1].get("resolved", {}).get("spatial_size")
    except (OSError, ValueError, AttributeError):
        return None
    return list(size) if isinstance(size, list) and len(size) == 2 else None


def decision_threshold(ckpt_path: CheckpointSpec) -> float | None:
    """The lesion/normal threshold chosen on validation data, from the card of ``ckpt_path``; None: the argmax.

    For several checkpoints, the mean of their thresholds (each chosen on its own fold's validation
    split; the ensemble has no validation split of its own), logged with its members. When some members
    have a threshold and others none (no card, or a card of an uncalibrated fold), the ensemble is refused
    in one line naming them: the calibrated threshold used to be dropped without a word, the ensemble
    deciding by the argmax.
    """
    paths = checkpoint_paths(ckpt_path)
    thresholds = [(read_card(path) or {}).get("lesion_threshold") for path in paths]
    lacking = [str(p) for p, t in zip(paths, thresholds) if t is None]
    if not lacking:
        threshold = float(sum(thresholds) / len(thresholds))
        if len(paths) > 1:
            logger.info("ensemble lesion threshold %.4f: the mean of its members' %s", threshold, thresholds)
        return threshold
    if len(lacking) < len(paths):
        raise InputError(
            f"--ckpt_path: {len(lacking)} of the {len(paths)} ensemble members have no lesion threshold in a model "
            f"card ({', '.join(lacking)}); calibrate them (scripts/calibrate.py) or set --lesion_threshold."
        )
    return None


def calibration_temperature(ckpt_path: CheckpointSpec) -> float:
    """The temperature fitted on validation data (:func:`custom.evaluation.calibration.fit_temperature`), from the
    card of ``ckpt_path``; 1 (the network's own probabilities) when the card has none.

    For several checkpoints, the mean of their temperatures, or 1 unless every card has one, as for
    :func:`decision_threshold`.
    """
    temperatures = [(read_card(path) or {}).get("temperature") for path in checkpoint_paths(ckpt_path)]
    if any(t is None for t in temperatures):
        return 1.0
    return float(sum(temperatures) / len(temperatures))


def write_card(ckpt_path: str | os.PathLike, content: Mapping[str, Any]) -> dict[str, Any]:
    """Writes the card of the checkpoint at ``ckpt_path`` (``content`` plus the weights' size and SHA-256)."""
    weights = Path(ckpt_path)
    stored = {"file": weights.name, "bytes": weights.stat().st_size, "sha256": file_sha256(weights)}
    card = {**content, "weights": {**content.get("weights", {}), **stored}}
    atomic_write_json(card_path(weights), card)
    return card


def half_state_dict(network: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with floating tensors in float16 (integer buffers such as BN counters unchanged)."""
    return {
        k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
        for k, v in network.state_dict().items()
    }


def decisions(
    output: Mapping[str, torch.Tensor],
    csb_mode: str = "hard",
    lesion_threshold: float | None = None,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masks (B,1,H,W, bool, after the CSB gate) and class decisions (B,) of a batch output."""
    cls_logits = output["cls"] / temperature
    masks = csb_gate(output["seg"], cls_logits, csb_mode, lesion_threshold) >= 0.5
    return masks, predicted_class(cls_logits, lesion_threshold)


def check_half_storage(
    network: nn.Module,
    batches: Sequence[torch.Tensor],
    csb_mode: str = "hard",
    lesion_threshold: float | None = None,
    temperature: float = 1.0,
) -> dict[str, float]:
    """How much storing ``network``'s weights in float16 changes its decisions on ``batches``.

    Returns the mean and smallest Dice between the masks of the float32 network and of the same network
    loaded from float16 weights (1 where both are empty), the share of identical class decisions and
    the largest change of a logit.
    """
    half = copy.deepcopy(network)
    half.load_state_dict(half_state_dict(network))
    dices, same, diff, n = [], 0, 0.0, 0
    with torch.inference_mode():
        for x in batches:
            out32, out16 = network(x), half(x)
            diff = max(diff, max(float((out32[k] - out16[k]).abs().max()) for k in out32))
            (m32, c32), (m16, c16) = (decisions(out, csb_mode, lesion_threshold, temperature) for out in (out32, out16))
            for a, b in zip(m32, m16):
                total = int(a.sum() + b.sum())
                dices.append(1.0 if total == 0 else 2.0 * int((a & b).sum()) / total)
            same += int((c32 == c16).sum())
            n += len(c32)
    return {
        "mask_dice_mean": sum(dices) / len(dices),
        "mask_dice_min": min(dices),
        "decision_agreement": same / n,
        "max_abs_logit_change": diff,
        "images": n,
    }


def write_release(network: nn.Module, out_dir: str | os.PathLike, card: Mapping[str, Any]) -> dict[str, Any]:
    """Writes ``model.pt`` (float16 state dict) and ``model.json`` (``card`` plus size and SHA-256) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.pt"
    with atomic_file(weights, durable=True) as f:
        torch.save(half_state_dict(network), f)
    return write_card(weights, {**card, "weights": {"dtype": "float16"}})


def release_from_run(
    run_dir: str | os.PathLike, fold: int = 0, out_dir: str | os.PathLike = "bundle/models", note: str = ""
) -> dict[str, Any]:
    """Releases fold ``fold`` of a cross-validation run (``scripts/cross_validate.py``) into ``out_dir``.

    The network and its settings come from the run's own configs (``run.json``), the weights from the
    fold's ``model.pt`` (chosen on its validation split), the figures from its ``metrics.json`` (test
    split). The float16 check runs on the fold's test images at the network's input size.
    """
    from custom.deploy.loading import bundle_parser, load_model_weights

    run = Path(run_dir)
    meta_file, fold_dir = run / "run.json", run / f"fold{fold}"
    for needed in (meta_file, fold_dir / "model.pt", fold_dir / "metrics.json"):
        if not needed.is_file():
            raise InputError(f"{needed}: missing; train and evaluate the fold first (scripts/cross_validate.py).")
    weights, card = fold_dir / "model.pt", card_path(fold_dir / "model.pt")
    released = {"the fold's weights": weights, "the fold's model card": card}
    for written in (Path(out_dir) / "model.pt", card_path(Path(out_dir) / "model.pt")):
        check_not_an_input(written, released, "--out")
    meta = json.loads(meta_file.read_text())
    overrides = {
        **meta.get("overrides", {}),
        **{"dataset_dir": meta["data"], "fold": fold, "val_split": "test", "output_dir": str(fold_dir)},
    }
    parser = bundle_parser(meta["config_files"], overrides)
    network = load_model_weights(parser.get_parsed_content("network_def"), fold_dir / "model.pt").eval()
    csb_mode = parser.get_parsed_content("csb_mode")
    loader = parser.get_parsed_content("validate#dataloader")
    batches = [torch.as_tensor(batch["image"]) for batch in loader]
    settings = {k: parser.get_parsed_content(k) for k in ("spatial_size", "in_channels", "num_classes", "csb_mode")}
    calibrated = read_card(fold_dir / "model.pt") or {}  # scripts/calibrate.py: the threshold chosen on validation
    threshold, temperature = calibrated.get("lesion_threshold"), calibrated.get("temperature", 1.0)
    card = {
        "network": parser.get_parsed_content("network_def#name"),
        **settings,
        "trained_with": {
            "config_files": [os.path.relpath(f) if os.path.isabs(f) else f for f in meta["config_files"]],
            "overrides": meta.get("overrides", {}),
            "data": Path(meta["data"]).name,
            "fold": fold,
            "checkpoint_selection": "best validation key metric (Dice over all images, after CSB)",
            "provenance": meta.get("produced_by", {}),
        },
        "lesion_threshold": threshold,
        "temperature": temperature,
        "calibration": calibrated.get("calibration"),
        "test_metrics": json.loads((fold_dir / "metrics.json").read_text()),
        "half_storage_check": check_half_storage(network, batches, csb_mode, threshold, temperature),
        "note": note,
    }
    return write_release(network, out_dir, card)
