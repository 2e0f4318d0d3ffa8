"""Ensembles of trained checkpoints: the folds of a cross-validation run as one network, averaged at the probability level.

nnU-Net ensembles the five networks of its cross-validation by default, and strong 2D bundles offered to
the Model Zoo do the same: each fold's network saw a different 60 % of the data, and their average is
steadier than any one of them. Here ``--ckpt_path`` of ``inference.json`` may name one checkpoint, a
list of them, or a folder: a cross-validation run (its ``fold<k>/model.pt``), a training run (its
``model.pt`` alone) or a folder of ``*.pt`` files. :func:`ensemble_of` gives the network to load them into, and
:class:`custom.engine.checkpoint.FiniteCheckpointLoader` loads each member from its own file.

The members' segmentation and class probabilities are averaged
(:func:`custom.engine.tta.average_probabilities`, shared with test-time augmentation), and the spread of
their lesion probabilities is written to each image's JSON as ``tta_disagreement``. The input size
must be the same for every member; the lesion/normal threshold of the ensemble is the mean of the
members' thresholds (each chosen on its own fold's validation split), see
:func:`custom.deploy.release.decision_threshold`.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

from custom.engine.tta import average_probabilities
from custom.errors import InputError

__all__ = ["ProbabilityEnsemble", "checkpoint_paths", "ensemble_of"]

logger = logging.getLogger("nunet")

TRAINING_CHECKPOINT_PREFIX = "checkpoint_epoch="  # custom.engine.checkpoint.ResumableCheckpoint's files

CheckpointSpec = str | os.PathLike | Sequence[str | os.PathLike]


def checkpoint_paths(ckpt_path: CheckpointSpec) -> list[Path]:
    """The checkpoint files ``ckpt_path`` names: itself, each of a list, or those of a folder.

    A folder is read as a cross-validation run when it has ``fold<k>/model.pt`` files (in fold order);
    as a training run when it has a ``model.pt`` (its best validation checkpoint, logged: the run's
    ``checkpoint_epoch=N.pt`` is its last epoch, not a second model, and the two used to be ensembled
    without a word); else as a folder of ``*.pt`` checkpoints (by name) other than training checkpoints.
    A path that is neither a file nor a folder is returned as it is, for the loader to report as missing.
    """
    if isinstance(ckpt_path, (list, tuple)):
        if not ckpt_path:
            raise InputError("--ckpt_path []: give at least one checkpoint.")
        return [Path(p) for p in ckpt_path]
    path = Path(ckpt_path)
    if not path.is_dir():
        return [path]
    folds = sorted(path.glob("fold*/model.pt"), key=lambda p: (len(p.parent.name), p.parent.name))
    if folds:
        return folds
    if (path / "model.pt").is_file():
        logger.info("--ckpt_path %s: a training run; using its model.pt (the best validation checkpoint)", path)
        return [path / "model.pt"]
    found = [p for p in sorted(path.glob("*.pt")) if not p.name.startswith(TRAINING_CHECKPOINT_PREFIX)]
    if not found:
        raise InputError(
            f"--ckpt_path {path}: the folder holds no fold*/model.pt, no model.pt and no *.pt model other than "
            "training checkpoints (checkpoint_epoch=N.pt); name the checkpoint file to use."
        )
    return found


class ProbabilityEnsemble(nn.Module):
    """Several networks of one architecture whose probabilities are averaged (``disagreement``: their spread).

    Args:
        members: the networks (each returns ``{"seg": logits, "cls": logits}`` or a subset).
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return average_probabilities([member(x) for member in self.members])


def ensemble_of(network: nn.Module, ckpt_path: CheckpointSpec) -> nn.Module:
    """``network`` itself for one checkpoint, else a :class:`ProbabilityEnsemble` of one copy per checkpoint."""
    paths = checkpoint_paths(ckpt_path)
    if len(paths) == 1:
        return network
    return ProbabilityEnsemble([network] + [copy.deepcopy(network) for _ in paths[1:]])
