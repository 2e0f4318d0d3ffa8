"""Finding checkpoint files: what ``--ckpt_path`` names, and the newest training checkpoint of a run folder."""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from custom.errors import InputError

__all__ = ["CheckpointSpec", "checkpoint_paths", "latest_checkpoint", "training_checkpoints"]

logger = logging.getLogger("nunet")

# ignite names an epoch-level checkpoint of several objects "checkpoint_epoch=<N>.pt"
# (custom.engine.checkpoint.ResumableCheckpoint writes them)
TRAINING_CHECKPOINT_PREFIX = "checkpoint_epoch="
_TRAINING_CHECKPOINT = re.compile(r"checkpoint_epoch=(\d+)\.pt$")

CheckpointSpec = str | os.PathLike | Sequence[str | os.PathLike]


def training_checkpoints(save_dir: str | os.PathLike) -> list[tuple[int, str]]:
    """``(epoch, path)`` of every ``checkpoint_epoch=N.pt`` in ``save_dir``, by epoch."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(os.fspath(save_dir)), f"{TRAINING_CHECKPOINT_PREFIX}*.pt")):
        match = _TRAINING_CHECKPOINT.search(path)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(save_dir: str | os.PathLike) -> str | None:
    """The ``checkpoint_epoch=N.pt`` in ``save_dir`` with the highest N, or None."""
    found = training_checkpoints(save_dir)
    return found[-1][1] if found else None


def checkpoint_paths(ckpt_path: CheckpointSpec) -> list[Path]:
    """The checkpoint files ``ckpt_path`` names: itself, each of a list, or those of a folder.

    A folder is read as a cross-validation run when it has ``fold<k>/model.pt`` files (in fold order);
    as a training run when it has a ``model.pt`` (its best validation checkpoint, logged: the run's
    ``checkpoint_epoch=N.pt`` is its last epoch, not a second model, and the two used to be ensembled
    without a word); else as a folder of ``*.pt`` checkpoints (by name) other than training checkpoints.
    A path that is neither a file nor a folder is returned as it is, for the reader to report as missing.
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
