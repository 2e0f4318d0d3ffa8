"""Engine glue between the configs and MONAI's trainers/evaluators."""

from .handlers import EvaluationWriter, TrainingLog
from .outputs import batch_size_of, collate_pred_label
from .prepare_batch import MultiTaskPrepareBatch

__all__ = ["EvaluationWriter", "MultiTaskPrepareBatch", "TrainingLog", "batch_size_of", "collate_pred_label"]
