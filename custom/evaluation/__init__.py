"""Metrics (one definition each) used by validation, evaluation and reports."""

from .metrics import CLASSIFICATION_METRICS, SEGMENTATION_METRICS, classification_metrics, nanmean, segmentation_metrics

__all__ = ["CLASSIFICATION_METRICS", "SEGMENTATION_METRICS", "classification_metrics", "nanmean", "segmentation_metrics"]
