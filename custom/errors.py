"""Errors a user can fix (a missing file, an unknown option), reported in one line instead of a traceback.

Bundle runs go through MONAI's config machinery, which wraps every exception raised while
building a component in a ``RuntimeError`` and prints a long traceback. :func:`install_excepthook`
(called first in every config's ``initialize``) looks through the exception chain for an
:class:`InputError` and, when there is one, prints only its message: the file or key at fault and
what to do. Anything else (a bug) keeps its full traceback; so does everything when the
environment variable ``NUNET_TRACEBACK=1`` is set.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType


class InputError(ValueError):
    """Bad input the user can fix: the message names the file or key and says what to do."""


def find_input_error(exc: BaseException | None) -> InputError | None:
    """The first :class:`InputError` in ``exc``'s chain of causes and contexts, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, InputError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    error = find_input_error(exc)
    if error is None or os.environ.get("NUNET_TRACEBACK") == "1":
        sys.__excepthook__(exc_type, exc, tb)
    else:
        print(f"error: {error}", file=sys.stderr)


def install_excepthook() -> bool:
    """Makes uncaught :class:`InputError` print as one line; returns True so configs can list it."""
    sys.excepthook = _excepthook
    return True
