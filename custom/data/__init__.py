"""Data: dataset preparation (readers, duplicate groups, size tiers, folds, cache, demo data) and datalist loading.

Preparation (``scripts/prepare_data.py``) turns a dataset folder into a prepared folder (see
:mod:`custom.data.pipeline`); training reads its fold files with :func:`load_datalist`.

Names are imported on first use (PEP 562): ``load_datalist`` pulls in MONAI (~5 s), which the
preparation scripts and the demo-data generator do not need.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataError": "errors",
    "ThreadDataLoader": "loading",
    "balanced_sampler": "sampling",
    "class_weights": "weights",
    "collate_records": "loading",
    "ensure_demo_dataset": "demo",
    "find_duplicate_groups": "duplicates",
    "image_records": "inputs",
    "load_cache": "cache",
    "load_cached_split": "cache",
    "lesion_share_sampler": "sampling",
    "load_datalist": "datalist",
    "merge_prepared": "merge",
    "make_demo_dataset": "demo",
    "oversample": "oversampling",
    "prepare_bus_uclm": "bus_uclm",
    "prepare_busi": "busi",
    "prepare_folder": "folder",
    "readable_records": "inputs",
    "replication_factors": "oversampling",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
