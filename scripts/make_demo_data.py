"""Writes the synthetic demo dataset (BUSI layout) and prepares it into folds (custom/data/demo.py).

    python scripts/make_demo_data.py --out <dir> [--seed 0]

Raw images go to <dir>/raw/{benign,malignant,normal}/; datalist.json, fold0.json ... fold4.json and
summary.json to <dir>.
"""

from __future__ import annotations

from custom.cli import run as run_command
from custom.data.demo import make_demo_dataset


def main(out: str, seed: int = 0) -> None:
    """Generates the demo dataset into ``out`` with ``seed``."""
    summary = make_demo_dataset(out, seed)
    print(
        f"demo dataset: {summary['records']} images {summary['classes']} in {out} ({summary['seconds']} s to prepare)"
    )


if __name__ == "__main__":
    run_command(main)
