"""Weighted sampling of a training split: classes drawn equally often, or a set share of lesion images."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from torch.utils.data import WeightedRandomSampler

from custom.data.oversampling import class_index, resolve_class_key
from custom.errors import InputError

logger = logging.getLogger("nunet")


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


def lesion_share_sampler(
    records: Sequence[Mapping], lesion_share: float = 0.7, balance_datasets: bool = False
) -> WeightedRandomSampler:
    """Draws ``len(records)`` records per epoch with replacement, a share ``lesion_share`` of them with a lesion.

    :func:`balanced_sampler` with two classes spends half of the draws on normal images, which carry
    no segmentation signal; at 0.7, about 1.4x as many lesion images are seen per epoch, and a batch
    of 6 still holds a normal image with probability 1 - 0.7^6 = 0.88. Within each side every record
    is equally likely (so each dataset of a merged set keeps its share of the lesion images).

    ``balance_datasets`` splits each side equally between the datasets of a merged set (the records'
    ``dataset``), every record equally likely within its dataset and side. Without it the class
    follows the scanner: in fold 0 of BUSI + BUS-UCLM, 83 % of the BUSI training images hold a lesion
    and 41 % of the BUS-UCLM frames, so the draws reward a classifier that recognises the scanner
    instead of the lesion (P(lesion | a BUSI draw) = 0.87, P(lesion | a BUS-UCLM draw) = 0.49 at
    ``lesion_share`` 0.7). Balanced, P(lesion | dataset) is ``lesion_share`` for every dataset. A
    dataset without images of one side leaves that side to the others.

    Args:
        records: the training split's records; each needs ``lesion`` (0 or 1), and ``dataset`` for
            ``balance_datasets`` (records without it form one dataset).
        lesion_share: probability that a draw is a lesion image, strictly between 0 and 1.
        balance_datasets: give every dataset an equal share of each side's draws.
    """
    if not 0.0 < lesion_share < 1.0:
        raise InputError(f"--lesion_share {lesion_share!r}: expected a number strictly between 0 and 1.")
    if any("lesion" not in r for r in records):
        logger.warning("training records lack 'lesion': sampling uniformly.")
        return WeightedRandomSampler(torch.ones(len(records), dtype=torch.double), len(records), replacement=True)
    lesion = [int(r["lesion"]) for r in records]
    if len(set(lesion)) < 2:  # one side only: nothing to reweight
        return WeightedRandomSampler(torch.ones(len(records), dtype=torch.double), len(records), replacement=True)
    share = {1: lesion_share, 0: 1.0 - lesion_share}
    cells = [(y, str(r.get("dataset", "")) if balance_datasets else "") for y, r in zip(lesion, records)]
    counts = Counter(cells)
    datasets_per_side = Counter(y for y, _ in counts)
    weights = torch.tensor([share[y] / datasets_per_side[y] / counts[(y, d)] for y, d in cells], dtype=torch.double)
    return WeightedRandomSampler(weights, num_samples=len(records), replacement=True)
