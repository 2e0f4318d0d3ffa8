"""Cross-validation report: paper-style tables, figures, overlays and Grad-CAM of one or more runs.

The report only displays what a run already computed (``summary.json``, ``per_image.csv``,
``train_log.jsonl``) and re-runs the saved models on the cases it shows; it never chooses anything
from test images.
"""

from .builder import build_report

__all__ = ["build_report"]
