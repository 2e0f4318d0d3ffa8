"""Prepares a breast-ultrasound dataset for training: normalised cases, datalist, folds, summary.

Options: ``python scripts/prepare_data.py --help`` or ``nunet-prepare-data --help``; the commands are
:data:`custom.workflows.prepare.PREPARE_COMMANDS`.
"""

from custom.workflows.prepare import main

if __name__ == "__main__":
    main()
