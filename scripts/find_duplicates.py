"""Finds groups of near-duplicate images in a folder by SSIM (Aumente-Maestro et al., section 4.2; custom/data/duplicates.py).

    python scripts/find_duplicates.py --src <dir> --out <groups.csv> [--threshold 0.5]

Every image under <dir> is compared (recursively; BUSI's *_mask* files are skipped). The CSV lists
``group,file,best_ssim`` for each member of a group of two or more.
"""

from __future__ import annotations

from pathlib import Path

from custom.cli import run as run_command
from custom.data.duplicates import THRESHOLD, find_duplicates_in_folder


def main(src: str, out: str, threshold: float = THRESHOLD) -> None:
    """Writes the duplicate groups of the images under ``src`` to the CSV ``out``."""
    found = find_duplicates_in_folder(Path(src), Path(out), threshold)
    print(
        f"{found['images']} images, {found['pairs_compared']} pairs compared in {found['seconds']} s: "
        f"{found['groups']} groups, {found['images_in_groups']} images in groups -> {out}"
    )


if __name__ == "__main__":
    run_command(main)
