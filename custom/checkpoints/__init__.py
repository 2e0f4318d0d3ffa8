"""A trained model on disk: weights files, their model cards, and the :class:`TrainedModel` a run resolves from them.

- :mod:`.discovery`: the files ``--ckpt_path`` names (a file, a folder, a list) and a run's newest
  training checkpoint;
- :mod:`.reading`: reading weights safely, checking them finite and of the network, loading them;
- :mod:`.card`: the model card (``model.json``: input size, threshold, temperature, the weights' SHA-256);
- :mod:`.trained`: :class:`TrainedModel`, all of the above resolved once per run.

The lowest package of the project after the single modules (``custom.errors``, ``custom.fileio``,
``custom.provenance``): the packages above it (networks, engine, deploy, workflows) import it, it imports
none of them (``tests/test_imports.py``).
"""

from .card import CARD_FIELDS, card_path, check_card, read_card, stored_card, training_run_input_size, write_card
from .discovery import CheckpointSpec, checkpoint_paths, latest_checkpoint, training_checkpoints
from .reading import check_finite_weights, load_model_weights, load_weights, non_finite_tensors, read_weights
from .trained import TrainedModel

__all__ = [
    "CARD_FIELDS",
    "CheckpointSpec",
    "TrainedModel",
    "card_path",
    "check_card",
    "check_finite_weights",
    "checkpoint_paths",
    "latest_checkpoint",
    "load_model_weights",
    "load_weights",
    "non_finite_tensors",
    "read_card",
    "read_weights",
    "stored_card",
    "training_checkpoints",
    "training_run_input_size",
    "write_card",
]
