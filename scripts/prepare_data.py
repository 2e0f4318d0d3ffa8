"""Prepares a breast-ultrasound dataset for training: normalised cases, datalist, folds, summary (issue 3).

    python scripts/prepare_data.py busi --src <Dataset_BUSI_with_GT> --out <dir> [--curated <mapping_curated_BUSI.csv>]
        [--dedup auto|none] [--folds 5] [--seed 0] [--skip-bad] [--cache-size 256]
    python scripts/prepare_data.py bus_uclm --src <folder with INFO.csv, images/, masks/> --out <dir> [same options]
    python scripts/prepare_data.py folder --images <dir> --masks <dir> [--labels <csv>] --out <dir> [same options]

Output: ``<dir>/images``, ``<dir>/labels``, ``datalist.json``, ``fold0.json`` ... and ``summary.json``
(see custom/data/pipeline.py). Bad input stops with one ``error: <file>: <problem>`` line and exit
status 1, unless ``--skip-bad`` leaves such cases out (listed in summary.json).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import fire

from custom.data.bus_uclm import prepare_bus_uclm
from custom.data.busi import prepare_busi
from custom.data.errors import DataError
from custom.data.folder import prepare_folder


def _run(prepare: Callable[..., dict[str, Any]], out: str, **kwargs: Any) -> None:
    try:
        summary = prepare(out=out, **kwargs)
    except DataError as e:
        sys.exit("error: " + " ".join(str(e).split()))
    thresholds = summary["size_thresholds"]
    print(
        f"{summary['dataset']}: {summary['records']} images {summary['classes']}, "
        f"{summary['lesion_positive']} with a lesion"
    )
    if thresholds["alpha"] is not None:
        print(f"size tiers {summary['size_tiers']}: alpha {thresholds['alpha']:.1f}, beta {thresholds['beta']:.1f}")
    if summary["duplicates"]:
        found = summary["duplicates"]
        print(f"duplicates: {found['groups_found']} groups, {found['images_in_groups']} images ({found['seconds']} s)")
        if "against_reference" in found:
            scores = found["against_reference"]
            print(
                f"  against the Curated BUSI list: recall {scores['recall']:.3f}, precision {scores['precision']:.3f}"
            )
    if summary["excluded"]:
        print(f"excluded: {len(summary['excluded'])} files (reasons in summary.json)")
    if summary["adjusted"]:
        print(f"adjusted: {len(summary['adjusted'])} images (see summary.json)")
    print(f"folds: largest class / size-tier share gap {summary['folds']['max_gap_pp']} percentage points")
    print(f"wrote {out} in {summary['seconds']} s")


def busi(
    src: str,
    out: str,
    curated: str | None = None,
    dedup: str = "auto",
    folds: int = 5,
    seed: int = 0,
    skip_bad: bool = False,
    cache_size: int | None = None,
) -> None:
    """BUSI: <src>/{benign,malignant,normal}/<class> (<n>).png + _mask[_k].png; --curated keeps Curated BUSI's 450."""
    _run(
        prepare_busi,
        out,
        src=src,
        curated=curated,
        dedup=dedup,
        folds=folds,
        seed=seed,
        skip_bad=skip_bad,
        cache_size=cache_size,
    )


def bus_uclm(
    src: str,
    out: str,
    dedup: str = "none",
    folds: int = 5,
    seed: int = 0,
    skip_bad: bool = False,
    cache_size: int | None = None,
) -> None:
    """BUS-UCLM: <src>/INFO.csv (';', BOM), images/, masks/ (RGB: green benign, red malignant)."""
    _run(prepare_bus_uclm, out, src=src, dedup=dedup, folds=folds, seed=seed, skip_bad=skip_bad, cache_size=cache_size)


def folder(
    images: str,
    masks: str,
    out: str,
    labels: str | None = None,
    dedup: str = "none",
    folds: int = 5,
    seed: int = 0,
    skip_bad: bool = False,
    cache_size: int | None = None,
) -> None:
    """Image + mask pairs in two folders; classes from --labels (columns image, class) or the masks (normal/lesion)."""
    _run(
        prepare_folder,
        out,
        images=images,
        masks=masks,
        labels=labels,
        dedup=dedup,
        folds=folds,
        seed=seed,
        skip_bad=skip_bad,
        cache_size=cache_size,
    )


if __name__ == "__main__":
    fire.Fire({"busi": busi, "bus_uclm": bus_uclm, "folder": folder})
