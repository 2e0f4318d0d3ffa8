"""The prepared GPU check: benchmark, then fold 0 trained briefly with every speed switch and in fp32.

Options: ``python scripts/gpu_check.py --help`` or ``nunet-gpu-check --help``; the command is
:func:`custom.workflows.gpu_check.gpu_check_command`.
"""

from custom.workflows.gpu_check import main

if __name__ == "__main__":
    main()
