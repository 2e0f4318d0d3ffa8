"""Data: dataset preparation (readers, duplicate groups, size tiers, folds, cache, demo data) and datalist loading.

Preparation (``scripts/prepare_data.py``) turns a dataset folder into a prepared folder (see
:mod:`custom.data.pipeline`); training reads its fold files with :func:`load_datalist`. Image files are
read and written through :mod:`custom.imageio`, which the runtime transforms use without this package.

Names are imported on first use (PEP 562): ``load_datalist`` pulls in MONAI (~5 s), which the
preparation scripts and the demo-data generator do not need.
"""

from __future__ import annotations

from custom.lazy import lazy_face

_EXPORTS = {
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
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS)
