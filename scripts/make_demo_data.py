"""Writes the synthetic demo dataset (BUSI layout) and prepares it into folds (custom/data/demo.py).

    python scripts/make_demo_data.py --out <dir> [--seed 0]

Raw images go to <dir>/raw/{benign,malignant,normal}/; datalist.json, fold0.json ... fold4.json and
summary.json to <dir>.
"""

from __future__ import annotations

import sys

import fire

from custom.data.demo import make_demo_dataset
from custom.data.errors import DataError


def main(out: str, seed: int = 0) -> None:
    """Generates the demo dataset into ``out`` with ``seed``."""
    try:
        summary = make_demo_dataset(out, seed)
    except DataError as e:
        sys.exit("error: " + " ".join(str(e).split()))
    print(
        f"demo dataset: {summary['records']} images {summary['classes']} in {out} ({summary['seconds']} s to prepare)"
    )


if __name__ == "__main__":
    fire.Fire(main)
