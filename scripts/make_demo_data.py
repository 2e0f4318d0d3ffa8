"""Writes the synthetic demo dataset (BUSI layout) and prepares it into folds.

Options: ``python scripts/make_demo_data.py --help`` or ``nunet-make-demo-data --help``; the command is
:func:`custom.workflows.prepare.make_demo_data_command`.
"""

from custom.workflows.prepare import make_demo_data_main

if __name__ == "__main__":
    make_demo_data_main()
