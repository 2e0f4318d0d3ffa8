"""Several prepared datasets as one: the union of their fold files, each record keeping its dataset.

Input: prepared folders (``scripts/prepare_data.py busi|bus_uclm|folder``) with the same number of
folds. Output, a prepared folder like any other (see :mod:`custom.data.pipeline`)::

    <out>/images/<dataset>/<id>.png, <out>/labels/<dataset>/<id>.png   hard links (copies across devices)
    <out>/fold{k}.json      each split the union of the inputs' fold k splits
    <out>/datalist.json     "all": every record
    <out>/summary.json      per-dataset counts and what produced it

Fold k of the merged set is fold k of every input, so each input's grouping (BUSI's duplicate
groups, BUS-UCLM's patients) stays whole across splits, and a fold's class and size-tier strata stay
balanced per dataset. Every record gains ``dataset`` (the input's name, also the prefix of its new
``id`` and of its ``group``), from which the reports give per-dataset figures; a field that not every
input has is dropped (listed in the summary). Size tiers stay those
of each input (its own thresholds): a "small" lesion is small for its scanner and field of view.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from custom.errors import DataError
from custom.fileio import atomic_write_json, check_outside, read_json
from custom.provenance import provenance

SPLITS = ("training", "validation", "test")


def dataset_key(name: str) -> str:
    """A dataset's name as a folder and id prefix: ``BUS-UCLM`` -> ``bus_uclm``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "dataset"


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another device, or a file system without hard links
        shutil.copy2(src, dst)


def _read_prepared(folder: Path) -> tuple[dict, list[dict]]:
    summary = read_json(folder / "summary.json", "prepare it with scripts/prepare_data.py")
    folds = sorted(folder.glob("fold*.json"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not folds:
        raise DataError(f"{folder}: no fold files; prepare it with scripts/prepare_data.py")
    return summary, [read_json(f, "prepare the folder again with scripts/prepare_data.py") for f in folds]


def merge_prepared(inputs: Sequence[str], out: str) -> dict[str, Any]:
    """Merges prepared folders ``inputs`` into ``out`` (see the module docstring); returns the summary.

    Args:
        inputs: two or more prepared folders with the same number of folds and distinct dataset names.
        out: the merged folder (created; must not lie inside an input).
    """
    start = time.perf_counter()
    folders = [Path(p) for p in inputs]
    if len(folders) < 2:
        raise DataError("merge: give two or more prepared folders (--inputs data/busi,data/bus_uclm)")
    out_dir = Path(out)
    check_outside(out_dir, folders)
    read = [_read_prepared(f) for f in folders]
    counts = {len(folds) for _, folds in read}
    if len(counts) != 1:
        raise DataError(f"merge: the inputs have different numbers of folds ({', '.join(map(str, counts))})")
    keys = [
        dataset_key(summary.get("dataset") or folds[0].get("name") or f.name)
        for f, (summary, folds) in zip(folders, read)
    ]
    if len(set(keys)) != len(keys):
        raise DataError(f"merge: two inputs have the same dataset name ({', '.join(keys)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    merged_folds: list[dict[str, list[dict]]] = [{s: [] for s in SPLITS} for _ in range(counts.pop())]
    everything: list[dict] = []
    per_dataset: dict[str, Any] = {}
    for folder, key, (summary, folds) in zip(folders, keys, read):
        renamed: dict[str, dict] = {}

        def moved(record: dict, folder: Path = folder, key: str = key, renamed: dict = renamed) -> dict:
            rid = record["id"]
            if rid not in renamed:
                new = {**record, "id": f"{key}_{rid}", "dataset": key, "group": f"{key}_{record.get('group', rid)}"}
                for field in ("image", "label"):
                    # images/<dataset>/...: a top-level folder named like the dataset would turn the
                    # record's "dataset" value into a path (MONAI's datalist loader resolves every string
                    # naming an existing file or folder against the datalist's folder)
                    first, _, rest = record[field].partition("/")
                    target = f"{first}/{key}/{rest}" if rest else f"{field}s/{key}/{first}"
                    _link(folder / record[field], out_dir / target)
                    new[field] = target
                renamed[rid] = new
            return renamed[rid]

        for k, content in enumerate(folds):
            for split in SPLITS:
                merged_folds[k][split] += [moved(r) for r in content[split]]
        everything += list(renamed.values())
        per_dataset[key] = {
            "source": str(folder),
            "name": summary.get("dataset"),
            "records": len(renamed),
            "classes": dict(Counter(r["class_name"] for r in renamed.values())),
            "size_thresholds": folds[0].get("size_thresholds"),
        }
    classes = {name: index for _, folds in read for name, index in folds[0].get("classes", {}).items()}
    common = {
        "name": "+".join(keys),
        "classes": classes,
        "size_thresholds": {k: v["size_thresholds"] for k, v in per_dataset.items()},
    }
    produced_by = provenance("custom.data.merge.merge_prepared", {"inputs": [str(f) for f in folders], "out": out})
    # a batch collates every field of its records: a field that only one dataset has (BUS-UCLM's
    # ``patient``, already folded into ``group``) would stop the data loader at the first mixed batch
    shared = set.intersection(*(set(r) for r in everything))
    dropped = sorted(set.union(*(set(r) for r in everything)) - shared)
    everything = [{k: v for k, v in r.items() if k in shared} for r in everything]
    merged_folds = [
        {s: [{k: v for k, v in r.items() if k in shared} for r in recs] for s, recs in f.items()} for f in merged_folds
    ]
    for k, splits in enumerate(merged_folds):
        atomic_write_json(
            out_dir / f"fold{k}.json",
            {**common, "produced_by": produced_by, "fold": k, "num_folds": len(merged_folds), **splits},
        )
    atomic_write_json(out_dir / "datalist.json", {**common, "produced_by": produced_by, "all": everything})
    summary = {
        "dataset": common["name"],
        "records": len(everything),
        "classes": dict(Counter(r["class_name"] for r in everything)),
        "lesion_positive": sum(r["lesion"] for r in everything),
        "datasets": per_dataset,
        "folds": {"k": len(merged_folds), "by": "fold k of every input"},
        "dropped_fields": dropped,
        "produced_by": produced_by,
        "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
