"""Cross-validation folds: k chunks by rotation, stratified by class x size tier, groups kept whole.

The N-Unet paper (section 4.1) uses five folds, each split 6 : 2 : 2 into training, validation and test
while preserving the class and lesion-size distributions. Here the data is cut into ``k`` chunks of
near-equal size and composition; fold ``f`` tests on chunk ``f``, validates on chunk ``f + 1`` (mod
``k``) and trains on the other ``k - 2`` (3 : 1 : 1 chunks for ``k = 5``). Every image is in exactly
one test split, and a group (duplicates, and the images of one patient where patients are known:
:func:`merge_groups`) is always in one chunk, so never on both sides of a training / validation /
test boundary.

Chunks are filled greedily: groups in order of decreasing size (ties in a seeded random order), each
to the chunk where it most reduces the squared gap between the chunk's per-stratum counts and the
per-stratum target (``count / k``); ties go to the smallest chunk, then to a seeded random one. The
same records and seed always give the same folds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SPLITS = ("training", "validation", "test")


def merge_groups(*labelings: Sequence) -> np.ndarray:
    """One group id per item such that items sharing a label in any of ``labelings`` share a group.

    For example duplicate groups and patients: two near-identical images of different patients, and
    all frames of one patient, each end up together. ``None`` labels join nothing.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(labelings[0])
    rows, cols, offset = [], [], n
    for labels in labelings:
        names = {label: k for k, label in enumerate(dict.fromkeys(x for x in labels if x is not None))}
        for item, label in enumerate(labels):
            if label is not None:
                rows.append(item)
                cols.append(offset + names[label])
        offset += len(names)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(offset, offset))
    return connected_components(graph, directed=False)[1][:n]


def assign_chunks(strata: Sequence[str], groups: Sequence[int], k: int, seed: int) -> np.ndarray:
    """The chunk (``0 .. k-1``) of every item, given its stratum and its group."""
    names = sorted(set(strata))
    stratum = np.array([names.index(s) for s in strata], dtype=int)
    group = np.asarray(groups)
    unique_groups = np.unique(group)
    # per-group stratum counts: a duplicate group may mix classes, so it is a vector, not one stratum
    counts = np.zeros((len(unique_groups), len(names)))
    np.add.at(counts, (np.searchsorted(unique_groups, group), stratum), 1)
    target = counts.sum(axis=0) / k
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(unique_groups))
    order = shuffled[np.argsort(-counts[shuffled].sum(axis=1), kind="stable")]
    filled = np.zeros((k, len(names)))
    chunk_of_group = np.empty(len(unique_groups), dtype=int)
    for g in order:
        # change of sum((filled + counts[g] - target)^2) when adding the group to each chunk
        cost = 2 * (filled - target) @ counts[g]
        size = filled.sum(axis=1)
        best = np.flatnonzero(np.isclose(cost, cost.min()))
        best = best[size[best] == size[best].min()]
        chunk = int(rng.choice(best))
        filled[chunk] += counts[g]
        chunk_of_group[g] = chunk
    return chunk_of_group[np.searchsorted(unique_groups, group)]


def rotate(chunks: np.ndarray, k: int) -> list[dict[str, list[int]]]:
    """Item indices of training / validation / test for each of the ``k`` folds."""
    folds = []
    for f in range(k):
        test, validation = f, (f + 1) % k
        folds.append(
            {
                "training": [int(i) for i in np.flatnonzero((chunks != test) & (chunks != validation))],
                "validation": [int(i) for i in np.flatnonzero(chunks == validation)],
                "test": [int(i) for i in np.flatnonzero(chunks == test)],
            }
        )
    return folds


def proportions(records: Sequence[Mapping], key: str) -> dict[str, float]:
    """Share of each value of ``key`` among ``records``."""
    values = [str(r[key]) for r in records]
    return {v: values.count(v) / len(values) for v in sorted(set(values))} if values else {}


def balance_report(records: Sequence[Mapping], folds: Sequence[Mapping[str, Sequence[int]]]) -> dict:
    """Per fold and split: size, class and size-tier shares, and the largest gap to the whole (percentage points)."""
    whole = {key: proportions(records, key) for key in ("class_name", "size_tier")}
    report, worst = [], 0.0
    for f, fold in enumerate(folds):
        entry: dict = {"fold": f}
        for split in SPLITS:
            subset = [records[i] for i in fold[split]]
            shares = {key: proportions(subset, key) for key in whole}
            gap = max(
                (abs(shares[key].get(v, 0.0) - whole[key][v]) * 100 for key in whole for v in whole[key]), default=0.0
            )
            worst = max(worst, gap)
            entry[split] = {"count": len(subset), **shares, "max_gap_pp": round(gap, 2)}
        report.append(entry)
    return {"max_gap_pp": round(worst, 2), "folds": report}
