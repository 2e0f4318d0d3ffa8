"""The compact resized copy of a prepared dataset and its loaders (custom/data/cache.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from custom.data.busi import prepare_busi
from custom.data.cache import load_cache, load_cached_split
from custom.data.demo import write_raw
from custom.errors import DataError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    write_raw(root / "raw")
    prepare_busi(str(root / "raw"), str(root), dedup="none", cache_size=32)
    return root


def test_cache_holds_every_case_resized(prepared):
    cases = load_cache(str(prepared / "cache_32.npz"))
    records = json.loads((prepared / "datalist.json").read_text())["all"]
    assert [c["id"] for c in cases] == [r["id"] for r in records]
    for case, record in zip(cases, records, strict=True):
        assert case["image"].shape == case["label"].shape == (1, 32, 32)
        assert case["image"].dtype == case["label"].dtype == np.uint8
        assert set(np.unique(case["label"])) <= {0, 1}
        assert case["class"] == record["class"] and case["size_tier"] == record["size_tier"]
        original = Image.open(prepared / record["image"])
        assert np.array_equal(case["image"][0], np.asarray(original.resize((32, 32), Image.Resampling.BICUBIC)))
        mask = Image.open(prepared / record["label"]).resize((32, 32), Image.Resampling.NEAREST)
        assert np.array_equal(case["label"][0], np.asarray(mask) > 0)


def test_cached_split_follows_the_fold_file(prepared):
    fold = json.loads((prepared / "fold2.json").read_text())
    cases = load_cached_split(str(prepared / "cache_32.npz"), str(prepared / "fold2.json"), "validation")
    assert [c["id"] for c in cases] == [r["id"] for r in fold["validation"]]


def test_unreadable_cache(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"nonsense")
    with pytest.raises(DataError, match="not a readable dataset cache"):
        load_cache(str(tmp_path / "c.npz"))


def test_rerun_without_cache_removes_the_stale_one(prepared, tmp_path):
    prepare_busi(str(prepared / "raw"), str(tmp_path), dedup="none", cache_size=16)
    assert (tmp_path / "cache_16.npz").is_file()
    prepare_busi(str(prepared / "raw"), str(tmp_path), dedup="none")
    assert not list(tmp_path.glob("cache_*.npz"))
