"""Engine glue between the configs and MONAI's trainers/evaluators."""

from .handlers import EvaluationWriter, TrainingLog, atomic_write_text
from .outputs import batch_size_of, collate_pred_label
from .prepare_batch import MultiTaskPrepareBatch

__all__ = ["EvaluationWriter", "MultiTaskPrepareBatch", "TrainingLog", "atomic_write_text", "batch_size_of", "collate_pred_label"]
