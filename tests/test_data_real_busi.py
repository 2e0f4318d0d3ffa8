"""Acceptance checks of the preparation on the real BUSI (issue 3), when ../shared/datasets is there.

Skipped, with the reason printed, where the dataset is not available. Two runs, about 60 s in all
on an idle 2-core machine: full BUSI through the command line with duplicate search and cache (whose
time less the search's bounds a run without it), and Curated BUSI.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_script

from custom.data.busi import prepare_busi, read_curated_list
from custom.data.cache import load_cache, load_cached_split
from custom.data.duplicates import membership_scores

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO / ".." / "shared" / "datasets"
BUSI = DATASETS / "Dataset_BUSI_with_GT"
CURATED = DATASETS / "mapping_curated_BUSI.csv"
PAPER_ALPHA, PAPER_BETA = 2097, 6725  # N-Unet, section 4.1

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (BUSI.is_dir() and CURATED.is_file()), reason=f"real BUSI not found at {DATASETS.resolve()}"
    ),
]


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """BUSI through the command line: duplicate search on (the default), 5 folds, 256 cache."""
    out = tmp_path_factory.mktemp("busi")
    # the command line in this process (its fire parsing and printing), without a new interpreter
    proc = run_script("prepare_data.py", "busi", "--src", str(BUSI), "--out", str(out), "--cache-size", "256")
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_counts_and_size_thresholds(full):
    summary = _json(full / "summary.json")
    records = _json(full / "datalist.json")["all"]
    assert len(records) == 780 and summary["records"] == 780
    assert Counter(r["class_name"] for r in records) == {"benign": 437, "malignant": 210, "normal": 133}
    assert sum(r["lesion"] for r in records) == 647
    alpha, beta = summary["size_thresholds"]["alpha"], summary["size_thresholds"]["beta"]
    print(f"alpha {alpha:.1f} ({alpha / PAPER_ALPHA - 1:+.2%}), beta {beta:.1f} ({beta / PAPER_BETA - 1:+.2%})")
    assert abs(alpha / PAPER_ALPHA - 1) <= 0.03 and abs(beta / PAPER_BETA - 1) <= 0.03


def test_folds_cover_all_keep_groups_whole_and_preserve_proportions(full):
    records = _json(full / "datalist.json")["all"]
    ids = sorted(r["id"] for r in records)
    tested = []
    for k in range(5):
        fold = _json(full / f"fold{k}.json")
        splits = {s: fold[s] for s in ("training", "validation", "test")}
        assert sorted(r["id"] for s in splits.values() for r in s) == ids
        groups = {s: {r["group"] for r in rs} for s, rs in splits.items()}
        assert not (
            groups["training"] & groups["validation"]
            or groups["training"] & groups["test"]
            or groups["validation"] & groups["test"]
        )
        for key in ("class_name", "size_tier"):
            whole = Counter(r[key] for r in records)
            for name, split in splits.items():
                share = Counter(r[key] for r in split)
                for value, count in whole.items():
                    gap = abs(share[value] / len(split) - count / len(records)) * 100
                    assert gap <= 3.0, (k, name, key, value, gap)
        tested += [r["id"] for r in fold["test"]]
    assert sorted(tested) == ids
    print(f"largest share gap: {_json(full / 'summary.json')['folds']['max_gap_pp']} pp")


def test_duplicate_search_against_curated_busi(full):
    found = _json(full / "summary.json")["duplicates"]
    in_groups = {i for g in found["groups"] for i in g}
    removed = {r["id"] for r in _json(full / "datalist.json")["all"]} - read_curated_list(CURATED)
    assert len(removed) == 330
    scores = membership_scores(in_groups, removed)
    print(
        f"duplicates: {found['groups_found']} groups, {found['pairs_compared']} pairs in {found['seconds']} s, "
        f"recall {scores['recall']:.3f}, precision {scores['precision']:.3f}"
    )
    assert scores["recall"] >= 0.9 and scores["precision"] >= 0.9
    # the two copies of one file the dataset README names, in two classes
    assert any({"benign_433", "malignant_145"} <= set(g) for g in found["groups"])


def test_cache_is_small_and_loads(full):
    path = full / "cache_256.npz"
    assert path.stat().st_size < 40e6
    cases = load_cache(str(path))
    assert len(cases) == 780 and cases[0]["image"].shape == (1, 256, 256)
    assert len(load_cached_split(str(path), str(full / "fold0.json"), "test")) == len(
        _json(full / "fold0.json")["test"]
    )


def test_curated_busi(tmp_path):
    summary = prepare_busi(str(BUSI), str(tmp_path), curated=str(CURATED))
    assert summary["records"] == 450
    assert summary["classes"] == {"benign": 222, "malignant": 164, "normal": 64}
    scores = summary["duplicates"]["against_reference"]
    print(f"Curated BUSI: recall {scores['recall']:.3f}, precision {scores['precision']:.3f}")
    assert scores["recall"] >= 0.9 and scores["precision"] >= 0.9


@pytest.mark.benchmark
def test_duplicate_search_of_busi_takes_under_two_minutes(full):
    assert _json(full / "summary.json")["duplicates"]["seconds"] < 120


@pytest.mark.benchmark
def test_preparing_without_duplicate_search_takes_under_a_minute(full):
    # the full run's time less its duplicate search bounds a run with --dedup none from above: it also
    # made the search's thumbnails and the 256x256 cache (the dedup-none path itself is tested on demo data)
    summary = _json(full / "summary.json")
    seconds = summary["seconds"] - summary["duplicates"]["seconds"]
    print(f"BUSI without duplicate search: at most {seconds:.1f} s")
    assert summary["records"] == 780 and seconds < 60
