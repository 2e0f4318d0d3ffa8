"""The N-Unet paper's ablations (Table 7: AMTL x CSB x AFF x CLAE; Table 8: single-task variants) by cross-validation.

Options: ``python scripts/ablate.py --help`` or ``nunet-ablate --help``; the command is
:func:`custom.workflows.ablation.ablate_command`.
"""

from custom.workflows.ablation import main

if __name__ == "__main__":
    main()
