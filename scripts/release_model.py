"""Releases one fold of a cross-validation run as the bundle's model: float16 weights plus their card.

Options: ``python scripts/release_model.py --help`` or ``nunet-release-model --help``; the command is
:func:`custom.workflows.release_model.release_model_command`.
"""

from custom.workflows.release_model import main

if __name__ == "__main__":
    main()
