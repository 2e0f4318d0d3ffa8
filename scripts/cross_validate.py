"""Cross-validation of a bundle config on a prepared dataset, then the report.

Options: ``python scripts/cross_validate.py --help`` or ``nunet-cross-validate --help``; the command is
:func:`custom.workflows.crossval.cross_validate_command`.
"""

from custom.workflows.crossval import main

if __name__ == "__main__":
    main()
