"""Writes the Model Zoo release archive <name>_v<version>.zip of the bundle.

Options: ``python scripts/export_bundle.py --help`` or ``nunet-export-bundle --help``; the command is
:func:`custom.workflows.packaging.export_bundle_command`.
"""

from custom.workflows.packaging import main

if __name__ == "__main__":
    main()
