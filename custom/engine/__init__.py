"""Engine glue between the configs and MONAI's trainers/evaluators."""

from .amp import AutocastInferer, amp_dtype_name, amp_supported, autocast_kwargs, engine_grad_scaler
from .averaging import WeightAverage, as_handler
from .batch import BatchResults
from .carry import CarriedState
from .checkpoint import AtomicCheckpointSaver, ResumableCheckpoint
from .collate import batch_size_of, collate_pred_label
from .device import default_device, distributed, gpu_profile, memory_format, set_cudnn_benchmark
from .handlers import EvaluationWriter, QuietStatsHandler, TrainingLog
from .options import (
    check_device,
    check_override_keys,
    check_spatial_size,
    check_training_options,
    check_whole_number,
    set_determinism,
)
from .overlays import ValidationOverlays
from .prepare_batch import MultiTaskPrepareBatch
from .progress import InferenceSummary, IterationProgress, RunHeadline
from .sanity import NonFiniteGuard, TrainingDiverged
from .schedule import EarlyStopping, LrSchedule
from .tta import FlipTTAInferer
from .validation_metrics import key_metric, network_heads, validation_metrics

__all__ = [
    "AtomicCheckpointSaver",
    "AutocastInferer",
    "BatchResults",
    "CarriedState",
    "EarlyStopping",
    "EvaluationWriter",
    "QuietStatsHandler",
    "FlipTTAInferer",
    "InferenceSummary",
    "IterationProgress",
    "LrSchedule",
    "MultiTaskPrepareBatch",
    "NonFiniteGuard",
    "ResumableCheckpoint",
    "RunHeadline",
    "TrainingDiverged",
    "ValidationOverlays",
    "TrainingLog",
    "WeightAverage",
    "amp_dtype_name",
    "amp_supported",
    "as_handler",
    "autocast_kwargs",
    "batch_size_of",
    "check_device",
    "check_spatial_size",
    "check_override_keys",
    "check_training_options",
    "check_whole_number",
    "set_determinism",
    "collate_pred_label",
    "default_device",
    "distributed",
    "engine_grad_scaler",
    "gpu_profile",
    "key_metric",
    "memory_format",
    "network_heads",
    "set_cudnn_benchmark",
    "validation_metrics",
]
