"""Dataset preparation on the command line: a dataset in its published layout to a prepared folder, and its helpers.

Three commands over :mod:`custom.data` (the readers, records, size tiers, duplicate groups and folds are
there), each printing a short account of what it wrote::

    python scripts/prepare_data.py busi --src <Dataset_BUSI_with_GT> --out <dir> [--curated <mapping_curated_BUSI.csv>]
        [--dedup auto|none] [--folds 5] [--seed 0] [--skip-bad] [--cache-size 256]
    python scripts/prepare_data.py bus_uclm --src <folder with INFO.csv, images/, masks/> --out <dir>
        [--patients False] [same options]
    python scripts/prepare_data.py folder --images <dir> --masks <dir> [--labels <csv>] [--group_pattern <regex>]
        --out <dir> [same options]
    python scripts/prepare_data.py merge --inputs <dir>,<dir>[,...] --out <dir>
    python scripts/find_duplicates.py --src <dir> --out <groups.csv> [--threshold 0.5]
    python scripts/make_demo_data.py --out <dir> [--seed 0]

(or the console entry points ``nunet-prepare-data``, ``nunet-find-duplicates``, ``nunet-make-demo-data``).
A prepared folder holds ``images/``, ``labels/``, ``datalist.json``, ``fold0.json`` ... and ``summary.json``
(see custom/data/pipeline.py). Bad input stops with one ``error: <file>: <problem>`` line and exit status 1,
unless ``--skip-bad`` leaves such cases out (listed in summary.json).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from custom.cli import run as run_command
from custom.data.bus_uclm import prepare_bus_uclm
from custom.data.busi import prepare_busi
from custom.data.demo import make_demo_dataset
from custom.data.duplicates import THRESHOLD, find_duplicates_in_folder
from custom.data.folder import prepare_folder
from custom.data.merge import merge_prepared

__all__ = [
    "PREPARE_COMMANDS",
    "find_duplicates_command",
    "find_duplicates_main",
    "main",
    "make_demo_data_command",
    "make_demo_data_main",
    "merge_command",
]


def _command(prepare: Callable[..., dict[str, Any]]) -> Callable[..., None]:
    """The command line of a ``prepare_*`` function: same arguments (fire reads them through ``wraps``),
    one ``error:`` line for bad data, and a short account of what was written."""

    @functools.wraps(prepare)
    def command(*args: Any, **kwargs: Any) -> None:
        summary = prepare(*args, **kwargs)
        _print_summary(summary)

    return command


def _print_summary(summary: dict[str, Any]) -> None:
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
    grouping = summary["grouping"]
    if grouping["patients"]:
        print(f"patients: {grouping['patients']}; {grouping['groups']} groups kept whole across splits")
    if summary["excluded"]:
        print(f"excluded: {len(summary['excluded'])} files (reasons in summary.json)")
    if summary["adjusted"]:
        print(f"adjusted: {len(summary['adjusted'])} images (see summary.json)")
    print(f"folds: largest class / size-tier share gap {summary['folds']['max_gap_pp']} percentage points")
    print(f"wrote {summary['produced_by']['args']['out']} in {summary['seconds']} s")


def merge_command(inputs: str | list[str] | tuple[str, ...], out: str) -> None:
    """Merges prepared folders (``--inputs data/busi,data/bus_uclm``) into one, fold k with fold k.

    See :func:`custom.data.merge.merge_prepared`.
    """
    folders = inputs.split(",") if isinstance(inputs, str) else list(inputs)
    summary = merge_prepared(folders, out)
    for key, part in summary["datasets"].items():
        print(f"{key}: {part['records']} images {part['classes']} from {part['source']}")
    print(
        f"wrote {out}: {summary['records']} images, {summary['lesion_positive']} with a lesion, {summary['folds']['k']} folds"
    )


PREPARE_COMMANDS = {
    "busi": _command(prepare_busi),
    "bus_uclm": _command(prepare_bus_uclm),
    "folder": _command(prepare_folder),
    "merge": merge_command,
}


def main() -> None:
    """``nunet-prepare-data`` and ``scripts/prepare_data.py``: the commands of :data:`PREPARE_COMMANDS`."""
    run_command(PREPARE_COMMANDS)


def find_duplicates_command(src: str, out: str, threshold: float = THRESHOLD) -> None:
    """Writes the groups of near-duplicate images under ``src`` (by SSIM, Aumente-Maestro et al., section 4.2) to a CSV.

    ``python scripts/find_duplicates.py --src <dir> --out <groups.csv> [--threshold 0.5]``: every image
    under ``src`` is compared (recursively; BUSI's ``*_mask*`` files are skipped). The CSV lists
    ``group,file,best_ssim`` for each member of a group of two or more.
    """
    found = find_duplicates_in_folder(Path(src), Path(out), threshold)
    print(
        f"{found['images']} images, {found['pairs_compared']} pairs compared in {found['seconds']} s: "
        f"{found['groups']} groups, {found['images_in_groups']} images in groups -> {out}"
    )


def find_duplicates_main() -> None:
    """``nunet-find-duplicates`` and ``scripts/find_duplicates.py``: :func:`find_duplicates_command`."""
    run_command(find_duplicates_command)


def make_demo_data_command(out: str, seed: int = 0) -> None:
    """Writes the synthetic demo dataset (BUSI's layout) into ``out`` and prepares it into folds (custom/data/demo.py).

    ``python scripts/make_demo_data.py --out <dir> [--seed 0]``: raw images go to
    ``<dir>/raw/{benign,malignant,normal}/``; datalist.json, fold0.json ... fold4.json and summary.json to ``<dir>``.
    """
    summary = make_demo_dataset(out, seed)
    print(
        f"demo dataset: {summary['records']} images {summary['classes']} in {out} ({summary['seconds']} s to prepare)"
    )


def make_demo_data_main() -> None:
    """``nunet-make-demo-data`` and ``scripts/make_demo_data.py``: :func:`make_demo_data_command`."""
    run_command(make_demo_data_command)
