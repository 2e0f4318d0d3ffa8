"""Engine glue between the configs and MONAI's trainers/evaluators."""

from .amp import AutocastInferer, amp_dtype_name, amp_supported
from .checkpoint import ResumableCheckpoint, latest_checkpoint
from .handlers import EvaluationWriter, TrainingLog
from .outputs import batch_size_of, collate_pred_label
from .progress import IterationProgress
from .prepare_batch import MultiTaskPrepareBatch

__all__ = [
    "AutocastInferer",
    "IterationProgress",
    "EvaluationWriter",
    "MultiTaskPrepareBatch",
    "ResumableCheckpoint",
    "TrainingLog",
    "batch_size_of",
    "amp_dtype_name",
    "amp_supported",
    "collate_pred_label",
    "latest_checkpoint",
]
