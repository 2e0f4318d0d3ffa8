"""Writes the report of one or more cross-validation runs (custom/report).

    python scripts/report.py runs/<A> [runs/<B> ...] --out <dir>

Writes <dir>/report.md, <dir>/report.html (self-contained) and <dir>/figures/*.png. With two or more
runs, every run after the first is compared with the first on the test images they share.
"""

from __future__ import annotations

from custom.cli import run as run_command
from custom.errors import InputError
from custom.report import build_report


def main(*runs: str, out: str = "report") -> None:
    """Builds the report of ``runs`` into ``out``."""
    if not runs:
        raise InputError("give at least one run folder (runs/<name>)")
    path = build_report(runs, out)
    print(f"report written to {path / 'report.html'} and {path / 'report.md'}")


if __name__ == "__main__":
    run_command(main)
