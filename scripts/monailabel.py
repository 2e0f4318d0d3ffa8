"""Serve the bundle with MONAI Label (monailabel 0.8.5): lay out the app, then start the server.

Options: ``python scripts/monailabel.py --help`` or ``nunet-monailabel --help``; the commands are
:func:`custom.workflows.monailabel.app_command` and ``serve_command``.
"""

from custom.workflows.monailabel import main

if __name__ == "__main__":
    main()
