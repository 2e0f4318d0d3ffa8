"""A learning-rate range test (MONAI's LearningRateFinder) on a training config and its data.

Options: ``python scripts/lr_find.py --help`` or ``nunet-lr-find --help``; the command is
:func:`custom.workflows.lr_range.lr_find_command`.
"""

from custom.workflows.lr_range import main

if __name__ == "__main__":
    main()
