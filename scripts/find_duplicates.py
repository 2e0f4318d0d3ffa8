"""Finds groups of near-duplicate images in a folder by SSIM (Aumente-Maestro et al., section 4.2).

Options: ``python scripts/find_duplicates.py --help`` or ``nunet-find-duplicates --help``; the command is
:func:`custom.workflows.prepare.find_duplicates_command`.
"""

from custom.workflows.prepare import find_duplicates_main

if __name__ == "__main__":
    find_duplicates_main()
