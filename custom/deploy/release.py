"""The released model: compact weights plus a card that records how to run them and what they scored.

``bundle/models/model.pt`` holds the network's state dict stored in float16 (half the size; it loads
into the float32 network unchanged, ``load_state_dict`` casts) and ``bundle/models/model.json`` what
a user and the configs need to know about it: the network and its settings, the input size it was
trained at, the SHA-256 of the weights, the recipe, data and fold, the measured test figures, and
the check that float16 storage does not change the masks or decisions.

The card is read and written by :mod:`custom.checkpoints` (``inference.json`` and ``evaluate.json``
take the input size, threshold and temperature from it through their ``trained_model``).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from custom.checkpoints import TrainedModel, card_path, write_card
from custom.configs import bundle_parser, recorded_config_files
from custom.errors import InputError
from custom.fileio import atomic_file, check_not_an_input
from custom.networks.csb import csb_gate, predicted_class


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
    configs = recorded_config_files(meta["config_files"])
    parser = bundle_parser(configs, overrides)
    trained = TrainedModel(weights)  # the threshold and temperature scripts/calibrate.py chose on validation
    network = trained.load(parser.get_parsed_content("network_def")).eval()
    csb_mode = parser.get_parsed_content("csb_mode")
    loader = parser.get_parsed_content("validate#dataloader")
    batches = [torch.as_tensor(batch["image"]) for batch in loader]
    settings = {k: parser.get_parsed_content(k) for k in ("spatial_size", "in_channels", "num_classes", "csb_mode")}
    threshold, temperature = trained.lesion_threshold, trained.temperature
    card = {
        "network": parser.get_parsed_content("network_def#name"),
        **settings,
        "classifier_input": parser.get_parsed_content("network_def#classifier_input", default=None),
        "trained_with": {
            "config_files": [os.path.relpath(f) if os.path.isabs(f) else f for f in configs],
            "overrides": meta.get("overrides", {}),
            "data": Path(meta["data"]).name,
            "fold": fold,
            "checkpoint_selection": "best validation key metric (Dice over all images, after CSB)",
            "provenance": meta.get("produced_by", {}),
        },
        "lesion_threshold": threshold,
        "temperature": temperature,
        "calibration": (trained.cards[0] or {}).get("calibration"),
        "test_metrics": json.loads((fold_dir / "metrics.json").read_text()),
        "half_storage_check": check_half_storage(network, batches, csb_mode, threshold, temperature),
        "note": note,
    }
    return write_release(network, out_dir, card)
