"""Metrics (one definition each) used by validation, evaluation and reports, and the report statistics.

Names are imported on first use (PEP 562), as in :mod:`custom.data`: the runtime transforms import
:mod:`custom.evaluation.measurements` alone, and the summary of a run (:mod:`custom.evaluation.summary`)
reads the size tiers of dataset preparation, a package inference does not load.
"""

from __future__ import annotations

from custom.lazy import lazy_face

_EXPORTS = {
    "BOUNDARY_METRICS": "metrics",
    "CLASSIFICATION_METRICS": "metrics",
    "CONVENTIONS": "summary",
    "MILLIMETRE_METRICS": "metrics",
    "SEGMENTATION_METRICS": "metrics",
    "aggregate_folds": "statistics",
    "bootstrap_ci": "statistics",
    "boundary_metrics": "metrics",
    "classification_metrics": "metrics",
    "nanmean": "metrics",
    "paired_comparison": "statistics",
    "read_per_image": "summary",
    "segmentation_metrics": "metrics",
    "summarize": "summary",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS)
