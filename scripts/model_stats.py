"""Prints parameters and THOP MACs of registered networks as JSON.

Options: ``python scripts/model_stats.py --help`` or ``nunet-model-stats --help``; the command is
:func:`custom.workflows.model_stats.model_stats_command`.
"""

from custom.workflows.model_stats import main

if __name__ == "__main__":
    main()
