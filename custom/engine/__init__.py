"""Engine glue between the configs and MONAI's trainers/evaluators."""

from .checkpoint import ResumableCheckpoint, latest_checkpoint
from .handlers import EvaluationWriter, TrainingLog
from .outputs import batch_size_of, collate_pred_label
from .prepare_batch import MultiTaskPrepareBatch

__all__ = [
    "EvaluationWriter",
    "MultiTaskPrepareBatch",
    "ResumableCheckpoint",
    "TrainingLog",
    "batch_size_of",
    "collate_pred_label",
    "latest_checkpoint",
]
