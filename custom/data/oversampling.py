"""Deterministic oversampling of a training split (Aumente-Maestro et al. 2025, section 3.1, module 1)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from fractions import Fraction

logger = logging.getLogger("nunet")


def replication_factors(
    records: Sequence[Mapping], num_classes: int = 3, class_key: str | None = None
) -> dict[int, int]:
    """The replication factor ``RF_c = round(1 / P_c)`` of every class present in ``records``.

    ``P_c = N_c / N`` is the fraction of class ``c``. The paper writes ``ceil(1 / P_c)`` but its own
    example (49.3 / 36.4 / 14.2 % -> 2 / 3 / 7; ceil would give 3 / 3 / 8) and the authors' code
    round, so this rounds. ``1 / P_c = N / N_c`` is computed as an exact fraction and rounded with
    Python's ``round`` (a tie such as ``N / N_c = 2.5`` goes to the even factor, 2), so the factors
    do not depend on floating-point noise. ``1 / P_c >= 1`` makes every factor at least 1.

    Args:
        records: datalist records.
        num_classes: 2 (normal / lesion) or 3 (normal / benign / malignant).
        class_key: record field holding the class index; by default ``"lesion"`` for 2 classes and
            ``"class"`` for 3, the fields ``scripts/prepare_data.py`` writes.

    Raises:
        ValueError: for ``num_classes`` other than 2 or 3, or a class index outside ``[0, num_classes)``.
        KeyError: when a record lacks ``class_key``.
    """
    key = resolve_class_key(num_classes, class_key)
    counts = Counter(class_index(r, key, num_classes) for r in records)
    return {c: round(Fraction(len(records), n)) for c, n in sorted(counts.items())}


def oversample(records: Sequence[Mapping], num_classes: int = 3, class_key: str | None = None) -> list[dict]:
    """Repeats every record ``RF_c`` times (:func:`replication_factors`), keeping the record order.

    Whole classes are replicated rather than randomly drawn records, so every run sees the same
    training set (the paper's point: no randomness-induced differences between experiments). Apply it
    to the training split only; validation and test keep their class distribution. Each copy is a
    new dict, so later per-record edits do not leak between copies.

    Records without the class field (a MONAI Label datastore gives only image and mask) are returned
    unchanged with a warning, the same fallback as :func:`custom.data.class_weights`.

    Args: see :func:`replication_factors`.
    """
    key = resolve_class_key(num_classes, class_key)
    if any(key not in r for r in records):
        logger.warning("training records lack %r: deterministic oversampling skipped.", key)
        return [dict(r) for r in records]
    factors = replication_factors(records, num_classes, key)
    logger.info("deterministic oversampling, replication factor per class: %s", factors)
    return [dict(r) for r in records for _ in range(factors[class_index(r, key, num_classes)])]


def resolve_class_key(num_classes: int, class_key: str | None) -> str:
    if num_classes not in (2, 3):
        raise ValueError(f"num_classes must be 2 (normal/lesion) or 3 (normal/benign/malignant), got {num_classes}.")
    return class_key or ("lesion" if num_classes == 2 else "class")


def class_index(record: Mapping, key: str, num_classes: int) -> int:
    label = int(record[key])
    if not 0 <= label < num_classes:
        raise ValueError(
            f"record {record.get('id', record.get('image', '?'))!r}: {key} = {label} is outside [0, {num_classes})."
        )
    return label
