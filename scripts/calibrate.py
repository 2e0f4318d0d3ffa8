"""Chooses each fold's lesion/normal threshold on its validation split, then re-evaluates the test split.

Options: ``python scripts/calibrate.py --help`` or ``nunet-calibrate --help``; the command is
:func:`custom.workflows.calibrate.calibrate_command`.
"""

from custom.workflows.calibrate import main

if __name__ == "__main__":
    main()
