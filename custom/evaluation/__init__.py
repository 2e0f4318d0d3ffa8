"""Metrics (one definition each) used by validation, evaluation and reports, and the report statistics."""

from .metrics import CLASSIFICATION_METRICS, SEGMENTATION_METRICS, classification_metrics, nanmean, segmentation_metrics
from .statistics import aggregate_folds, bootstrap_ci, paired_comparison
from .summary import CONVENTIONS, read_per_image, summarize

__all__ = [
    "CLASSIFICATION_METRICS",
    "CONVENTIONS",
    "SEGMENTATION_METRICS",
    "aggregate_folds",
    "bootstrap_ci",
    "classification_metrics",
    "nanmean",
    "paired_comparison",
    "read_per_image",
    "segmentation_metrics",
    "summarize",
]
