"""Measures the bundle's training and inference speed against a plain baseline pipeline, in one run.

Options: ``python scripts/benchmark.py --help`` or ``nunet-benchmark --help``; the command is
:func:`custom.workflows.benchmark_report.benchmark_command`.
"""

from custom.workflows.benchmark_report import main

if __name__ == "__main__":
    main()
