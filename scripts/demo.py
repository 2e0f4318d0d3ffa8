"""Train, evaluate and infer on the synthetic demo data with the bundle's own commands, then run the released model.

Options: ``python scripts/demo.py --help`` or ``nunet-demo --help``; the command is
:func:`custom.workflows.demo_run.demo_command`.
"""

from custom.workflows.demo_run import main

if __name__ == "__main__":
    main()
