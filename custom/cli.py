"""The command line of every script in ``scripts/``: ``fire``, and problems a user can fix in one line.

``python scripts/<name>.py ...`` calls :func:`run` with its command(s). An exception whose chain holds a
:class:`custom.errors.UserError` (bad data, a missing run folder, an unknown option) or an environment
fault (a full disk, a read-only folder) is printed as one ``error: <file or option>: <problem>`` line
with exit status 1, as the bundle runs print theirs (:func:`custom.errors.install_excepthook`).
Anything else is a bug and keeps its traceback; ``NUNET_TRACEBACK=1`` keeps every traceback.

``--help`` (or ``-h``) anywhere before fire's own ``--`` shows the command's help and does nothing else:
``fire`` would pass it as an override to a command that takes ``**overrides`` (``benchmark.py --help``
ran the whole benchmark).

Options are checked against the command's signature before ``fire`` sees them: ``fire`` calls the
command with the arguments it understood and only then complains about the rest, so a mistyped
``--seeds 7`` would have run the whole command with the default seed (and overwritten its output)
before the complaint.
"""

from __future__ import annotations

import difflib
import inspect
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import fire

from custom.errors import InputError, one_line


def check_options(component: Any, argv: Sequence[str]) -> None:
    """Raise :class:`InputError` naming the first ``--option`` in ``argv`` that the command does not take.

    ``component`` is what :func:`run` gives ``fire``: a function, or a mapping from command names to
    functions (the first argument picks one). Commands taking ``**kwargs`` accept anything.
    """
    args = list(argv)
    command = component
    if isinstance(component, Mapping):
        if not args or args[0] not in component:
            return  # fire lists the commands
        command = component[args.pop(0)]
    if not callable(command):
        return
    parameters = inspect.signature(command).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    names = set(parameters)
    for arg in args:
        if arg == "--":
            return  # what follows is fire's own flags (-- --help)
        if not arg.startswith("--"):
            continue
        name = arg[2:].split("=", 1)[0].replace("-", "_")
        if name in names or (name.startswith("no") and name[2:] in names):  # fire's --noflag for booleans
            continue
        close = difflib.get_close_matches(name, sorted(names), n=1)
        hint = f"did you mean --{close[0]}? " if close else ""
        raise InputError(f"--{name}: not an option of this command; {hint}options: --{', --'.join(parameters)}.")


def whole_numbers(value: Any, option: str) -> list[int] | None:
    """A list option as fire delivers it (``--folds 3``: 3; ``--folds 0,1``: a tuple; ``"[0, 1]"``: a string)
    as whole numbers; None stays None. :class:`InputError` names the option otherwise."""
    if value is None:
        return None
    items = str(value).strip("()[] ").split(",") if isinstance(value, (int, str)) else list(value)
    try:
        numbers = [int(str(item).strip()) for item in items if str(item).strip()]
    except ValueError:
        numbers = []
    if not numbers:
        raise InputError(f"--{option} {value!r}: expected whole numbers, such as 0 or 0,1,2.")
    return numbers


def help_asked(component: Any, argv: Sequence[str]) -> list[str] | None:
    """The command line on which ``fire`` shows help (``[command] -- --help``) when ``argv`` asks for it before any
    ``--``, else None. Only the command's name is kept: ``fire`` would call the function with the other arguments
    before showing the help of its result."""
    args = list(argv)
    end = args.index("--") if "--" in args else len(args)
    if not {"--help", "-h"} & set(args[:end]):
        return None
    command = args[:1] if isinstance(component, Mapping) and args[:1] and args[0] in component else []
    return [*command, "--", "--help"]


def run(component: Any) -> None:
    """``fire.Fire(component)`` with problems a user can fix printed as one ``error:`` line and exit status 1."""
    try:
        help_argv = help_asked(component, sys.argv[1:])
        if help_argv is not None:
            fire.Fire(component, command=help_argv)
            return
        check_options(component, sys.argv[1:])
        fire.Fire(component)
    except BrokenPipeError:
        # the reader of the output left (``| head -1``): nothing is wrong with the command, and the
        # interpreter would fail again flushing stdout at exit, so stdout goes to nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    except Exception as e:
        message = one_line(e)
        if message is None or os.environ.get("NUNET_TRACEBACK") == "1":
            raise
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
