"""Writes the report of one or more cross-validation runs (custom/report).

Options: ``python scripts/report.py --help`` or ``nunet-report --help``; the command is
:func:`custom.workflows.reporting.report_command`.
"""

from custom.workflows.reporting import main

if __name__ == "__main__":
    main()
