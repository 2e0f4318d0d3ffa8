"""Errors a user can fix (a missing file, an unknown option, a full disk), reported in one line instead of a traceback.

Bundle runs go through MONAI's config machinery, which wraps every exception raised while
building a component in a ``RuntimeError`` and prints a long traceback. :func:`install_excepthook`
(called first in every config's ``initialize``) looks through the exception chain for a
:class:`UserError` and, when there is one, prints only its message: the file or key at fault and
what to do. Anything else (a bug) keeps its full traceback; so does everything when the
environment variable ``NUNET_TRACEBACK=1`` is set.

Two failures are recognised without a :class:`UserError`: an ``OSError`` of the environment (a full
disk or quota, a read-only file system, a permission denied, a file where a folder is expected or the
other way round) with its file name, printed as
``<file>: <reason>``, wherever it is raised; and MONAI's ``SaveImage`` (inference masks), which
catches the writer's ``OSError`` and raises a ``RuntimeError`` whose text holds the file name and
the formatted ``OSError``, printed as ``<file>: cannot write it (<reason>)``.
"""

from __future__ import annotations

import errno
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from types import TracebackType
from typing import Any


class UserError(Exception):
    """A problem the user can fix; its message names the file or key and says what is wrong."""


class InputError(UserError, ValueError):
    """Bad input the user can fix: the message names the file or key and says what to do."""


class DataError(InputError):
    """A problem with an image file or a dataset that the user can fix; the message starts with the file.

    Raised by the image codecs (:mod:`custom.imageio`) and dataset preparation (:mod:`custom.data`); a bundle run
    prints it as one line, and ``scripts/prepare_data.py`` turns it into ``error: <message>`` and a non-zero exit.
    """


class OutputError(UserError):
    """A file that could not be written (disk full, read-only or missing folder); the message names it."""


def check_list(option: str, value: Any, count: int | None, valid: Callable[[Any], bool], expected: str) -> list:
    """``value`` as a list when it is a list (or tuple) of ``count`` items (any number when None), each ``valid``;
    else :class:`InputError` ``"<option> <value>: expected <expected>."``.

    The one check of every option that takes a list (``--spatial_size``, ``--pixel_spacing``, each view of
    ``--tta_flips``), so a single number, a text, a list of the wrong length or of the wrong items stops in
    one line, not in a traceback from where the value is first used.
    """
    if (
        isinstance(value, (str, bytes, Mapping))
        or not isinstance(value, Sequence)
        or (count is not None and len(value) != count)
        or not all(valid(item) for item in value)
    ):
        raise InputError(f"{option} {value!r}: expected {expected}.")
    return list(value)


def is_whole(value: Any, least: int | None = None) -> bool:
    """Whether ``value`` is a whole number (not a boolean) of at least ``least``."""
    return isinstance(value, Integral) and not isinstance(value, bool) and (least is None or value >= least)


def is_positive(value: Any) -> bool:
    """Whether ``value`` is a finite number above 0 (not a boolean)."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


# MONAI's SaveImage failure: "SaveImage cannot find a suitable writer for <file>.\n ... OSError: [Errno 28] <reason>"
_SAVE_IMAGE_FAILURE = re.compile(r"cannot find a suitable writer for (?P<file>.+?)\.\n")
_OS_ERROR_LINE = re.compile(
    r"^\w*(?:OSError|IOError|PermissionError|FileNotFoundError): \[Errno \d+\] (?P<reason>[^\n:']+)", re.M
)


# the faults of the machine or of a path given, not of the program: the user frees space, changes
# permissions, or names a folder where a file is (or the other way round)
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
}


def _chain(exc: BaseException | None):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        yield exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__


def find_user_error(exc: BaseException | None) -> UserError | None:
    """The first :class:`UserError` in ``exc``'s chain of causes and contexts, if any."""
    return next((e for e in _chain(exc) if isinstance(e, UserError)), None)


def one_line(exc: BaseException | None) -> str | None:
    """The one-line message a bundle run prints for ``exc``, or None when it deserves its traceback."""
    error = find_user_error(exc)
    if error is not None:
        return " ".join(str(error).split())
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _ENVIRONMENT_ERRNOS and e.filename:
            return f"{e.filename}: {e.strerror}"
        text = str(e)
        written, reason = _SAVE_IMAGE_FAILURE.search(text), _OS_ERROR_LINE.search(text)
        if written and reason:
            return f"{written['file']}: cannot write it ({reason['reason'].strip()})"
    return None


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    message = one_line(exc)
    if message is None or os.environ.get("NUNET_TRACEBACK") == "1":
        sys.__excepthook__(exc_type, exc, tb)
    else:
        print(f"error: {message}", file=sys.stderr)


def install_excepthook() -> bool:
    """Makes uncaught :class:`UserError` print as one line; returns True so configs can list it."""
    sys.excepthook = _excepthook
    return True
