"""The report of one or more cross-validation runs on the command line (the report itself is :mod:`custom.report`)."""

from __future__ import annotations

from custom.cli import run as run_command
from custom.errors import InputError
from custom.report import build_report

__all__ = ["main", "report_command"]


def report_command(*runs: str, out: str = "report") -> None:
    """Builds the report of ``runs`` into ``out``.

    ``python scripts/report.py runs/<A> [runs/<B> ...] --out <dir>`` writes ``<dir>/report.md``,
    ``<dir>/report.html`` (self-contained) and ``<dir>/figures/*.png``. With two or more runs, every run
    after the first is compared with the first on the test images they share.
    """
    if not runs:
        raise InputError("give at least one run folder (runs/<name>)")
    path = build_report(runs, out)
    print(f"report written to {path / 'report.html'} and {path / 'report.md'}")


def main() -> None:
    """``nunet-report`` and ``scripts/report.py``: :func:`report_command` on the command line."""
    run_command(report_command)
