"""Class weights of the classification loss, counted on a training split (N-Unet paper, section 3.5.1)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

logger = logging.getLogger("nunet")


def class_weights(records: Sequence[Mapping], num_classes: int = 2) -> list[float]:
    """Per-class weights ``w_c = N_normal / N_c`` from the records of a training split.

    For ``num_classes = 2`` (normal, lesion) this is the paper's lesion-class weight
    ``w = N_neg / N_pos`` with weight 1 for normal images. For 3 classes (normal, benign,
    malignant) each lesion class is weighted by ``N_normal / N_class``, which reduces to the
    binary rule when benign and malignant are merged.

    Records without class information (for example a MONAI Label datastore, which only has image
    and mask) give uniform weights, logged as such: the mask alone cannot tell benign from malignant,
    and reading every mask here would duplicate the pipeline's label derivation.
    """
    if num_classes not in (2, 3):
        raise ValueError(f"num_classes must be 2 (normal/lesion) or 3 (normal/benign/malignant), got {num_classes}.")
    key = "lesion" if num_classes == 2 else "class"
    labels = [r[key] for r in records if key in r]
    if len(labels) < len(records) or not labels:
        logger.warning("training records lack %r: using uniform class weights.", key)
        return [1.0] * num_classes
    counts = [sum(1 for y in labels if int(y) == c) for c in range(num_classes)]
    if 0 in counts:
        logger.warning("class counts %s include an empty class: using uniform class weights.", counts)
        return [1.0] * num_classes
    return [counts[0] / n for n in counts]
