"""Metrics (one definition each) used by validation, evaluation and reports, and the report statistics."""

from .metrics import (
    BOUNDARY_METRICS,
    CLASSIFICATION_METRICS,
    MILLIMETRE_METRICS,
    SEGMENTATION_METRICS,
    boundary_metrics,
    classification_metrics,
    nanmean,
    segmentation_metrics,
)
from .statistics import aggregate_folds, bootstrap_ci, paired_comparison
from .summary import CONVENTIONS, read_per_image, summarize

__all__ = [
    "BOUNDARY_METRICS",
    "CLASSIFICATION_METRICS",
    "MILLIMETRE_METRICS",
    "CONVENTIONS",
    "SEGMENTATION_METRICS",
    "aggregate_folds",
    "bootstrap_ci",
    "boundary_metrics",
    "classification_metrics",
    "nanmean",
    "paired_comparison",
    "read_per_image",
    "segmentation_metrics",
    "summarize",
]
