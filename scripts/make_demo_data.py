"""Writes the synthetic demo dataset (BUSI layout) and prepares it into folds (custom/data/demo.py).

    python scripts/make_demo_data.py --out <dir> [--seed 0]

Raw images go to <dir>/raw/{benign,malignant,normal}/; datalist.json, fold0.json ... fold4.json and
summary.json to <dir>.
"""

from __future__ import annotations

import sys
from pathlib import Path

import fire

# lets the script run from a checkout without `pip install -e .`
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom.data.demo import make_demo_dataset  # noqa: E402
from custom.data.errors import DataError  # noqa: E402


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
