"""The command line of every script in ``scripts/``: ``fire``, and problems a user can fix in one line.

``python scripts/<name>.py ...`` calls :func:`run` with its command(s). An exception whose chain holds a
:class:`custom.errors.UserError` (bad data, a missing run folder, an unknown option) or an environment
fault (a full disk, a read-only folder) is printed as one ``error: <file or option>: <problem>`` line
with exit status 1, as the bundle runs print theirs (:func:`custom.errors.install_excepthook`).
Anything else is a bug and keeps its traceback; ``NUNET_TRACEBACK=1`` keeps every traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import fire

from custom.errors import one_line


def run(component: Any) -> None:
    """``fire.Fire(component)`` with problems a user can fix printed as one ``error:`` line and exit status 1."""
    try:
        fire.Fire(component)
    except Exception as e:
        message = one_line(e)
        if message is None or os.environ.get("NUNET_TRACEBACK") == "1":
            raise
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
