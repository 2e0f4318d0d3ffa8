"""Names of the per-image outputs that the decision transform writes and the metrics, writers and overlays read.

One definition, so that a producer and its consumers cannot drift apart. Values are plain strings
(:class:`enum.StrEnum`): configs and files use the same names (``"seg_pred"`` in ``inference.json``,
``lesion_prob`` in ``per_image.csv``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DecisionKeys"]


class DecisionKeys(StrEnum):
    """Keys of a decided sample (:class:`custom.transforms.MultiTaskDecisiond`)."""

    SEG_PROB = "seg_prob"  # lesion probability map after CSB
    SEG_PRED = "seg_pred"  # binary mask
    SEG_PRED_UNGATED = "seg_pred_ungated"  # binary mask before the CSB gate (to tell gate from segmentation errors)
    SEG_LABEL = "seg_label"  # reference mask
    CLS_PROB = "cls_prob"  # class probabilities
    CLS_PRED = "cls_pred"  # decided class index
    LESION_PROB = "lesion_prob"  # probability of any lesion class
    LESION_TRUE = "lesion_true"  # 1 when the reference class is a lesion
    LESION_PRED_ONEHOT = "lesion_pred_onehot"  # [normal, lesion] one-hot of the decision
    RESULT = "result"  # the JSON-ready record of the image
