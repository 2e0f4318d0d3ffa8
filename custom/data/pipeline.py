"""The preparation stage shared by every dataset: load, normalise, group, tier, fold, write.

Input: a reader's :class:`~custom.data.records.Scan` and its loader. Output folder::

    <out>/images/<id>.png     grayscale image at its original resolution (uint8)
    <out>/labels/<id>.png     lesion mask, single channel, 0 / 255
    <out>/datalist.json       "all": one record per case
    <out>/fold{k}.json        "training", "validation", "test" (see custom.data.folds)
    <out>/summary.json        counts, size thresholds, duplicate groups, excluded files and why
    <out>/cache_<size>.npz    optional, see custom.data.cache

Record paths are relative to the folder, so it can be moved; ``monai.data.load_decathlon_datalist``
with ``base_dir`` = the folder resolves them. Nothing a later stage reads is ever half-written: every
file (PNGs, fold files, datalist, cache, summary) is first written to a private staging folder,
``.prepare-<pid>-*.tmp``, and only then moved into place by renames, the summary last. A failed or
killed run leaves the previous output as it was, and the next run removes the staging folder of a
run that was killed before it could.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from custom.data import cache as cache_module
from custom.data import duplicates
from custom.data import folds as folds_module
from custom.data import sizes
from custom.data.records import (
    CLASS_INDEX,
    BadCase,
    CaseSource,
    LoadedCase,
    Scan,
    check_class_against_mask,
    drop_duplicate_ids,
)
from custom.errors import DataError
from custom.fileio import atomic_write_json, check_outside
from custom.imageio import IMAGE_PNG_LEVEL, write_png
from custom.provenance import provenance

DEDUP_MODES = ("auto", "none")
CASES_PER_WORKER = 100
STAGING_PREFIX = ".prepare-"  # + the process id: a later run removes the folders of processes that are gone


@dataclass
class _Prepared:
    """A loaded case reduced to what the later steps need (the full-size pixels are already on disk)."""

    case: CaseSource
    class_name: str
    area: int
    note: str | None
    thumbnail: np.ndarray | None
    cached_image: np.ndarray | None
    cached_mask: np.ndarray | None


def prepare(
    dataset: str,
    scan: Scan,
    load: Callable[[CaseSource], LoadedCase],
    out: str | Path,
    *,
    tool: str,
    args: Mapping[str, Any],
    dedup: str = "none",
    folds: int = 5,
    seed: int = 0,
    skip_bad: bool = False,
    cache_size: int | None = None,
    exclude: Mapping[str, str] | None = None,
    reference_duplicates: set[str] | None = None,
) -> dict[str, Any]:
    """Prepares the cases of ``scan`` into ``out`` and returns the summary (also written to summary.json).

    Args:
        dataset: dataset name for the datalist and summary.
        scan: the reader's cases and the files it could not use.
        load: the reader's loader of one case.
        out: output folder (created; other content in it is left alone).
        tool, args: what produced the output, recorded in every JSON file.
        dedup: "auto" (SSIM duplicate groups, custom.data.duplicates) or "none" (every image its own group).
        folds: number of folds k (>= 3: one test chunk, one validation chunk, k - 2 training chunks).
        seed: seed of the fold assignment.
        skip_bad: leave bad cases out (listed in summary.json) instead of stopping at the first one.
        cache_size: also write ``cache_<size>.npz`` (custom.data.cache) when given.
        exclude: ``id -> reason`` of cases to leave out after duplicate detection (e.g. Curated BUSI).
        reference_duplicates: ids known to be in duplicate groups, to score the detector against.
    """
    start = time.perf_counter()
    out = Path(out)
    _check_options(dedup, folds, seed, cache_size)
    _check_apart(out, scan.inputs)
    cases, duplicate_ids = drop_duplicate_ids(scan.cases)
    bad = scan.bad + duplicate_ids
    if bad and not skip_bad:
        raise DataError(_first_problem(bad))
    out.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(out)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=f"{STAGING_PREFIX}{os.getpid()}-", suffix=".tmp"))
    try:
        prepared, notes = _load_cases(cases, load, staging, dedup == "auto", cache_size, skip_bad, bad)
        if not prepared:
            raise DataError(f"no usable image in {', '.join(map(str, scan.inputs))} ({len(bad)} bad files)")
        search = duplicates.find_duplicate_groups([p.thumbnail for p in prepared]) if dedup == "auto" else None
        duplicate_summary = _duplicate_summary(search, prepared, reference_duplicates)
        exclude = exclude or {}
        excluded = [BadCase(p.case.source, exclude[p.case.id]) for p in prepared if p.case.id in exclude]
        kept = [i for i, p in enumerate(prepared) if p.case.id not in exclude]
        if len(kept) < folds:
            inputs = ", ".join(map(str, scan.inputs))
            raise DataError(f"{len(kept)} usable images in {inputs}: {folds} folds need at least {folds}")
        duplicate_groups = search.labels[kept] if search is not None else np.arange(len(kept))
        patients = [prepared[i].case.patient for i in kept]
        groups = folds_module.merge_groups(list(duplicate_groups), patients)
        records, thresholds = _records([prepared[i] for i in kept], groups)
        chunks = folds_module.assign_chunks(
            [f"{r['class_name']}/{r['size_tier']}" for r in records], [r["group"] for r in records], folds, seed
        )
        splits = folds_module.rotate(chunks, folds)
        produced_by = provenance(tool, args)
        summary = {
            "dataset": dataset,
            "records": len(records),
            "classes": dict(Counter(r["class_name"] for r in records)),
            "lesion_positive": sum(r["lesion"] for r in records),
            "size_tiers": dict(Counter(r["size_tier"] for r in records)),
            "size_thresholds": thresholds,
            "duplicates": duplicate_summary,
            "grouping": {
                "by": ["duplicates"] * (dedup == "auto") + ["patient"] * any(x is not None for x in patients),
                "patients": len({x for x in patients if x is not None}) or None,
                "groups": len(set(groups.tolist())),
            },
            "excluded": [b.as_dict() for b in bad + excluded],
            "adjusted": notes,
            "folds": folds_module.balance_report(records, splits),
            "produced_by": produced_by,
        }
        if cache_size:
            cache_module.write_cache(
                staging / f"cache_{cache_size}.npz",
                records,
                [prepared[i].cached_image for i in kept],
                [prepared[i].cached_mask for i in kept],
                produced_by,
            )
        summary["seconds"] = round(time.perf_counter() - start, 1)
        _commit(out, staging, records, splits, summary, produced_by, dataset, seed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _remove_abandoned_staging(out: Path) -> None:
    """Removes the staging folders of preparations whose process is gone (killed before its cleanup ran)."""
    for folder in out.glob(f"{STAGING_PREFIX}*.tmp"):
        match = re.match(rf"{re.escape(STAGING_PREFIX)}(\d+)-", folder.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _check_options(dedup: str, folds: int, seed: int, cache_size: int | None) -> None:
    if dedup not in DEDUP_MODES:
        raise DataError(f"--dedup must be one of {', '.join(DEDUP_MODES)}, got {dedup!r}")
    if not isinstance(folds, int) or folds < 3:
        raise DataError(f"--folds must be an integer >= 3 (test, validation and training chunks), got {folds!r}")
    if not isinstance(seed, int):
        raise DataError(f"--seed must be an integer, got {seed!r}")
    if cache_size is not None and (not isinstance(cache_size, int) or cache_size < 8):
        raise DataError(f"--cache-size must be an integer >= 8, got {cache_size!r}")


def _check_apart(out: Path, inputs: list[Path]) -> None:
    """Refuses an output that is a file, an input folder or inside one, or a folder whose images/ or labels/
    would replace an input folder."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: --out is a file, not a folder")
    check_outside(out, inputs)
    for name in ("images", "labels"):
        target = (out / name).resolve()
        for source in inputs:
            if source.resolve() == target or target in source.resolve().parents:
                raise DataError(f"{source}: --out {out} would overwrite this input with its {name}/ folder")


def _first_problem(bad: list[BadCase]) -> str:
    more = f"; {len(bad) - 1} more problem(s)" if len(bad) > 1 else ""
    return f"{bad[0]}{more} (--skip-bad leaves bad cases out and lists them in summary.json)"


def _workers(cases: int) -> int:
    """Processes for loading: one per ~100 cases, at most one per available core (2 halve BUSI's time)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, cases // CASES_PER_WORKER))


def _load_cases(
    cases: list[CaseSource],
    load: Callable[[CaseSource], LoadedCase],
    staging: Path,
    thumbnails: bool,
    cache_size: int | None,
    skip_bad: bool,
    bad: list[BadCase],
) -> tuple[list[_Prepared], list[dict[str, str]]]:
    """Loads every case (in parallel for large datasets), stopping at the first bad one unless ``skip_bad``."""
    work = partial(_prepare_case, load=load, staging=staging, thumbnails=thumbnails, cache_size=cache_size)
    workers = _workers(len(cases))
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    prepared, notes = [], []
    try:
        results = pool.map(work, cases, chunksize=8) if pool else map(work, cases)
        # a bar on a terminal only: logs and CI output stay free of carriage returns
        for result in tqdm(results, total=len(cases), desc="preparing", unit="image", disable=not sys.stderr.isatty()):
            if isinstance(result, BadCase):
                if not skip_bad:
                    raise DataError(_first_problem([result]))
                bad.append(result)
                continue
            prepared.append(result)
            if result.note:
                notes.append({"file": result.case.source, "note": result.note})
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return prepared, notes


def _prepare_case(
    case: CaseSource, load: Callable[[CaseSource], LoadedCase], staging: Path, thumbnails: bool, cache_size: int | None
) -> _Prepared | BadCase:
    """Loads one case, writes its PNGs to ``staging`` and keeps only the small arrays later steps need."""
    try:
        loaded = load(case)
        check_class_against_mask(case, loaded)
    except DataError as e:
        return BadCase.from_error(e, case.source)
    write_png(staging / "images" / f"{case.id}.png", loaded.image, IMAGE_PNG_LEVEL)
    write_png(staging / "labels" / f"{case.id}.png", loaded.mask.astype(np.uint8) * 255)
    return _Prepared(
        case=case,
        class_name=loaded.class_name,
        area=sizes.lesion_area(loaded.mask),
        note=loaded.note,
        thumbnail=duplicates.ssim_thumbnail(loaded.image) if thumbnails else None,
        cached_image=cache_module.resize_image(loaded.image, cache_size) if cache_size else None,
        cached_mask=sizes.resize_mask(loaded.mask, cache_size) if cache_size else None,
    )


def _duplicate_summary(
    search: duplicates.DuplicateSearch | None, prepared: list[_Prepared], reference: set[str] | None
) -> dict[str, Any] | None:
    if search is None:
        return None
    ids = [p.case.id for p in prepared]
    groups = [[ids[i] for i in g] for g in search.groups()]
    summary: dict[str, Any] = {
        "method": f"SSIM of {duplicates.SSIM_SIZE}x{duplicates.SSIM_SIZE} grayscale images >= {duplicates.THRESHOLD}, "
        f"candidates: {duplicates.NEIGHBOURS} nearest by thumbnail correlation (custom.data.duplicates)",
        "images": len(ids),
        "pairs_compared": search.pairs_compared,
        "seconds": round(search.seconds, 1),
        "groups_found": len(groups),
        "group_sizes": dict(sorted(Counter(len(g) for g in groups).items())),
        "images_in_groups": sum(len(g) for g in groups),
        "groups": groups,
        "pairs": [[ids[i], ids[j], round(s, 4)] for i, j, s in search.pairs],
    }
    if reference is not None:
        found = {i for g in groups for i in g}
        summary["against_reference"] = duplicates.membership_scores(found, reference & set(ids))
    return summary


def _records(prepared: list[_Prepared], groups: np.ndarray) -> tuple[list[dict], dict[str, Any]]:
    """The datalist records, and the size thresholds they were tiered with."""
    lesion = [int(p.class_name != "normal") for p in prepared]
    areas = [p.area for p, has in zip(prepared, lesion, strict=True) if has]
    alpha, beta = sizes.size_thresholds(areas) if areas else (None, None)
    # group ids renumbered 0, 1, ... in record order (gaps appear when cases are excluded)
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    group_ids = np.argsort(np.argsort(first))[inverse]
    records = [
        {
            "id": p.case.id,
            "image": f"images/{p.case.id}.png",
            "label": f"labels/{p.case.id}.png",
            "class_name": p.class_name,
            "class": CLASS_INDEX[p.class_name],
            "lesion": has,
            "lesion_area": p.area,
            "size_tier": sizes.size_tier(p.area, has, alpha, beta),
            "group": int(g),
            "source": p.case.source,
            **({"patient": p.case.patient} if p.case.patient is not None else {}),
        }
        for p, has, g in zip(prepared, lesion, group_ids, strict=True)
    ]
    thresholds = {
        "alpha": alpha,
        "beta": beta,
        "quantiles": list(sizes.QUANTILES),
        "quantile_method": f"numpy {sizes.QUANTILE_METHOD}",
        "area": f"foreground pixels of the mask at {sizes.AREA_SIZE}x{sizes.AREA_SIZE}, nearest neighbour (PIL)",
        "over": f"{len(areas)} lesion-positive images",
    }
    return records, thresholds


def _commit(
    out: Path,
    staging: Path,
    records: list[dict],
    splits: list[dict[str, list[int]]],
    summary: dict,
    produced_by: dict,
    dataset: str,
    seed: int,
) -> None:
    """Writes the fold files, the datalist and the summary beside the staged PNGs, then moves everything into place.

    Everything is complete on disk before the first rename, so the output changes only during a few
    renames (each atomic): a run stopped at any other moment leaves the previous preparation as it was.
    The summary moves last: a folder whose summary.json is there holds a finished preparation.
    """
    kept = {r["id"] for r in records}
    classes = {name: CLASS_INDEX[name] for name in sorted({r["class_name"] for r in records}, key=CLASS_INDEX.get)}
    common = {
        "name": dataset,
        "classes": classes,
        "size_thresholds": summary["size_thresholds"],
        "produced_by": produced_by,
    }
    for f, split in enumerate(splits):
        atomic_write_json(
            staging / f"fold{f}.json",
            {
                **common,
                "fold": f,
                "num_folds": len(splits),
                "seed": seed,
                **{key: [records[i] for i in split[key]] for key in folds_module.SPLITS},
            },
        )
    atomic_write_json(staging / "datalist.json", {**common, "all": records})
    atomic_write_json(staging / "summary.json", summary)
    for name in ("images", "labels"):
        staged = staging / name
        for file in staged.iterdir():
            if file.stem not in kept:
                file.unlink()
    for stale in out.iterdir():  # fold files of a preparation with more folds, a cache of another size
        match = re.fullmatch(r"fold(\d+)\.json|cache_\d+\.npz", stale.name)
        if match and not (staging / stale.name).exists():
            stale.unlink()
    for name in ("images", "labels"):
        target = out / name
        if target.exists():
            os.rename(target, staging / f"previous-{name}")
        os.rename(staging / name, target)
    files = sorted(staging.glob("*.json")) + sorted(staging.glob("cache_*.npz"))
    for file in sorted(files, key=lambda p: p.name == "summary.json"):  # the summary last
        os.replace(file, out / file.name)
