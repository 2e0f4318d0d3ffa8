"""Class-balanced sampling of a training split, for classifiers that learn from few images of one class."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from torch.utils.data import WeightedRandomSampler

from custom.data.oversampling import class_index, resolve_class_key

logger = logging.getLogger(__name__)


def balanced_sampler(
    records: Sequence[Mapping], num_classes: int = 2, class_key: str | None = None
) -> WeightedRandomSampler:
    """Draws ``len(records)`` records per epoch with replacement, every class equally likely.

    BUSI has one normal image for five with a lesion; with batches of 6, a third of the batches hold
    no normal image, and the classification loss, scaled down for the many lesion images by the
    class weights, barely reaches the shared encoder next to the Dice loss. Drawing the classes
    equally often gives the classifier a normal image in almost every batch; use it with uniform
    class weights (the sampling already balances the classes). An epoch keeps its length, so
    schedules and ETAs do not change; unlike :func:`custom.data.oversample` the draw is random
    (seeded by ``monai.utils.set_determinism``, restored on ``--resume``).

    Args:
        records: the training split's records.
        num_classes: 2 (normal / lesion) or 3 (normal / benign / malignant).
        class_key: record field holding the class index (default ``"lesion"`` for 2, ``"class"`` for 3).
    """
    key = resolve_class_key(num_classes, class_key)
    if any(key not in r for r in records):  # a MONAI Label datastore gives only image and mask
        logger.warning("training records lack %r: sampling uniformly.", key)
        return WeightedRandomSampler(torch.ones(len(records), dtype=torch.double), len(records), replacement=True)
    labels = [class_index(r, key, num_classes) for r in records]
    counts = Counter(labels)
    weights = torch.tensor([1.0 / counts[y] for y in labels], dtype=torch.double)
    return WeightedRandomSampler(weights, num_samples=len(records), replacement=True)
