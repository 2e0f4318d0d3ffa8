"""Folds by rotation, stratified by class x size tier, duplicate groups kept whole (custom/data/folds.py)."""

from __future__ import annotations

import numpy as np

from custom.data.folds import assign_chunks, balance_report, rotate


def _dataset(n: int = 600, seed: int = 1):
    rng = np.random.default_rng(seed)
    classes = rng.choice(["normal", "benign", "malignant"], n, p=[0.17, 0.56, 0.27])
    tiers = np.where(classes == "normal", "none", rng.choice(["small", "medium", "large"], n))
    groups = np.arange(n)
    for start in range(0, 120, 3):  # 40 duplicate triplets, some mixing classes
        groups[start : start + 3] = start
    records = [{"class_name": c, "size_tier": t} for c, t in zip(classes, tiers, strict=True)]
    return records, [f"{c}/{t}" for c, t in zip(classes, tiers, strict=True)], groups


def test_every_item_is_tested_once_and_splits_are_3_1_1():
    records, strata, groups = _dataset()
    folds = rotate(assign_chunks(strata, groups, 5, seed=0), 5)
    tested = sorted(i for fold in folds for i in fold["test"])
    assert tested == list(range(len(records)))
    for fold in folds:
        assert sorted(fold["training"] + fold["validation"] + fold["test"]) == list(range(len(records)))
        assert abs(len(fold["training"]) - 3 * len(fold["test"])) <= 15
        assert abs(len(fold["validation"]) - len(fold["test"])) <= 5


def test_groups_are_never_split_and_strata_are_balanced():
    records, strata, groups = _dataset()
    chunks = assign_chunks(strata, groups, 5, seed=0)
    for g in np.unique(groups):
        assert len(set(chunks[groups == g])) == 1
    report = balance_report(records, rotate(chunks, 5))
    assert report["max_gap_pp"] <= 3.0


def test_folds_depend_only_on_the_seed():
    _, strata, groups = _dataset()
    first = assign_chunks(strata, groups, 5, seed=3)
    assert np.array_equal(first, assign_chunks(strata, groups, 5, seed=3))
    assert not np.array_equal(first, assign_chunks(strata, groups, 5, seed=4))


def test_k_folds_give_k_minus_2_training_chunks():
    _, strata, groups = _dataset(n=300)
    folds = rotate(assign_chunks(strata, groups, 10, seed=0), 10)
    assert len(folds) == 10
    for fold in folds:
        assert abs(len(fold["training"]) - 8 * len(fold["test"])) <= 24


def test_merge_groups_joins_duplicates_and_patients_transitively():
    from custom.data.folds import merge_groups

    duplicates = [0, 0, 1, 2, 3, 4]
    patients = [None, "p", "p", None, "q", "q"]  # 0 ~ 1 (duplicates), 1 ~ 2 (patient p), 4 ~ 5 (patient q)
    groups = merge_groups(duplicates, patients)
    assert groups[0] == groups[1] == groups[2] and groups[4] == groups[5]
    assert len({groups[0], groups[3], groups[4]}) == 3
