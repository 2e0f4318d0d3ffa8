"""The trained model a run uses, resolved once from ``--ckpt_path``: its files, cards, input size and decision rule.

``--ckpt_path`` names one weights file, a folder or a list (an ensemble, :func:`checkpoint_paths`).
:class:`TrainedModel` resolves it once per run, and everything that needs to know about the weights
reads it from there: ``inference.json`` and ``evaluate.json`` (their ``trained_model`` component: input
size, what the classification head reads, lesion/normal threshold, temperature, the loaded network), the
ONNX export and its cache (one SHA-256 per file), the report's figures and MONAI Label (through ``inference.json``).

One input-size rule everywhere: the size the weights were trained at (their card's, else their
training run's) unless ``--spatial_size`` asks for another, which is used with one warning.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import torch.nn as nn

from custom.errors import InputError
from custom.provenance import file_sha256

from .card import read_card, training_run_classifier_input, training_run_input_size
from .discovery import CheckpointSpec, checkpoint_paths
from .reading import load_model_weights

__all__ = ["TrainedModel"]

logger = logging.getLogger("nunet")


class TrainedModel:
    """The weights files ``ckpt_path`` names, each with its SHA-256 and its model card (checked against it).

    Args:
        ckpt_path: one weights file, a folder (a cross-validation run, a training run, a folder of ``*.pt``)
            or a list of files; several files are an ensemble whose probabilities are averaged.
        default_size: the input size of weights that record none (with a warning).

    Attributes:
        paths: the weights files, one per ensemble member.
        sha256: the hex SHA-256 of each file, in the same order.
        cards: the model card of each file (None where it has none).

    Raises:
        InputError: for a missing file, or a card that is malformed or describes other weights.
    """

    def __init__(self, ckpt_path: CheckpointSpec, default_size: Sequence[int] = (256, 256)) -> None:
        self.paths = checkpoint_paths(ckpt_path)
        missing = [p for p in self.paths if not p.is_file()]
        if missing:
            raise InputError(f"checkpoint {str(missing[0])!r} does not exist.")
        self.sha256 = [file_sha256(p) for p in self.paths]
        self.cards: list[dict[str, Any] | None] = [read_card(p, h) for p, h in zip(self.paths, self.sha256)]
        self.default_size = list(default_size)

    def __repr__(self) -> str:
        return f"TrainedModel({', '.join(map(str, self.paths))})"

    @cached_property
    def recorded_size(self) -> list[int] | None:
        """The input size the weights were trained at (their cards', else their training runs'), None if unrecorded.

        Every member that records a size must record the same.
        """
        sizes = {}
        for path, card in zip(self.paths, self.cards):
            size = (card or {}).get("spatial_size") or training_run_input_size(path)
            if size:
                sizes[str(path)] = [int(s) for s in size]
        if len({tuple(s) for s in sizes.values()}) > 1:
            listed = ", ".join(f"{p}: {s}" for p, s in sizes.items())
            raise InputError(f"--ckpt_path: the checkpoints were trained at different input sizes ({listed}).")
        return next(iter(sizes.values()), None)

    @cached_property
    def spatial_size(self) -> list[int]:
        """The input size to run the weights at: :attr:`recorded_size`, else the default with a warning per file."""
        size = self.recorded_size or [int(s) for s in self.default_size]
        for path, card in zip(self.paths, self.cards):
            if not ((card or {}).get("spatial_size") or training_run_input_size(path)):
                logger.warning(
                    "%s: no model card or training run records its input size; running at %s (set --spatial_size "
                    "to the size it was trained at).",
                    path,
                    size,
                )
        return size

    def input_size(self, requested: Sequence[int] | None = None) -> list[int]:
        """The input size of a run: ``requested`` (an explicit ``--spatial_size``) when given, with one warning when
        the weights were trained at another size (the networks are fully convolutional, so it can be meant);
        else :attr:`spatial_size`."""
        if requested is None:
            return self.spatial_size
        requested = list(requested)
        if self.recorded_size is not None and requested != self.recorded_size:
            logger.warning(
                "%s was trained at %s and is run at %s (--spatial_size); leave --spatial_size out to run it at the "
                "size it was trained at, unless this is meant.",
                ", ".join(map(str, self.paths)),
                self.recorded_size,
                requested,
            )
        return requested

    @cached_property
    def classifier_input(self) -> str:
        """What the weights' classification head reads (``network_def``'s ``classifier_input``): their cards', else
        their training runs', else ``"bottleneck"`` (the paper's head, and every model before the option).

        Read like the input size, so evaluation and inference build the network the weights were trained in
        without the recipe that trained them; the members of an ensemble must agree.
        """
        found = {}
        for path, card in zip(self.paths, self.cards):
            found[str(path)] = (
                (card or {}).get("classifier_input") or training_run_classifier_input(path) or "bottleneck"
            )
        if len(set(found.values())) > 1:
            listed = ", ".join(f"{p}: {v}" for p, v in found.items())
            raise InputError(f"--ckpt_path: the checkpoints' classification heads read different inputs ({listed}).")
        return next(iter(found.values()))

    @cached_property
    def lesion_threshold(self) -> float | None:
        """The lesion/normal threshold chosen on validation data, from the cards; None: the argmax.

        For several checkpoints, the mean of their thresholds (each chosen on its own fold's validation
        split; the ensemble has no validation split of its own), logged with its members. When some members
        have a threshold and others none (no card, or a card of an uncalibrated fold), the ensemble is refused
        in one line naming them: the calibrated threshold used to be dropped without a word, the ensemble
        deciding by the argmax.
        """
        thresholds = [(card or {}).get("lesion_threshold") for card in self.cards]
        lacking = [str(p) for p, t in zip(self.paths, thresholds) if t is None]
        if not lacking:
            threshold = float(sum(thresholds) / len(thresholds))
            if len(self.paths) > 1:
                logger.info("ensemble lesion threshold %.4f: the mean of its members' %s", threshold, thresholds)
            return threshold
        if len(lacking) < len(self.paths):
            raise InputError(
                f"--ckpt_path: {len(lacking)} of the {len(self.paths)} ensemble members have no lesion threshold in "
                f"a model card ({', '.join(lacking)}); calibrate them (scripts/calibrate.py) or set --lesion_threshold."
            )
        return None

    @cached_property
    def temperature(self) -> float:
        """The temperature of the classification logits fitted on validation data
        (:func:`custom.evaluation.calibration.fit_temperature`), from the cards; 1 (the network's own
        probabilities) unless every card has one, the mean of theirs for several."""
        temperatures = [(card or {}).get("temperature") for card in self.cards]
        if any(t is None for t in temperatures):
            return 1.0
        return float(sum(temperatures) / len(temperatures))

    def load(self, network: nn.Module) -> nn.Module:
        """``network`` with the weights of the one file; several files (an ensemble) are a one-line error."""
        if len(self.paths) > 1:
            raise InputError(
                f"--ckpt_path names {len(self.paths)} checkpoints (an ensemble: {', '.join(map(str, self.paths))}), "
                "where one network is loaded; name one checkpoint file."
            )
        return self.members(network)[0]

    def members(self, network: nn.Module) -> list[nn.Module]:
        """One network per file with its weights: ``network`` itself for the first, a copy of it for each other
        (``custom.networks.ensemble`` averages them)."""
        networks = [network] + [copy.deepcopy(network) for _ in self.paths[1:]]
        for member, path in zip(networks, self.paths):
            load_model_weights(member, path)
        logger.info("weights loaded from %s", ", ".join(map(str, self.paths)))
        return networks
