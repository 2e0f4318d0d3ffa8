"""One way to run a ``monai.bundle run`` command from the applications: a subprocess, its arguments spelled
so that MONAI parses them back, its output in a log file and, filtered, on the console."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from custom.errors import InputError

__all__ = ["MONAI_NOTICES", "command_line", "config_arg", "is_monai_notice", "override_args", "run_bundle"]

# what MONAI prints before a bundle's first line runs (the README's "What a run prints"): its warning that a
# config runs code, for every config file, and, when the files of a config list lie in different folders
# (train.json with a recipe or a peer), that metadata.json and logging.conf are read from the first one's
MONAI_NOTICES = ("parsing config_file ", "Not all config files are in ")


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """``--key value`` arguments for ``monai.bundle run``, with values spelled so that it parses them back."""
    args = []
    for key, value in overrides.items():
        if isinstance(value, bool):
            text = str(value)  # "True"/"False": a lowercase "true" would arrive as a string
        elif isinstance(value, (list, tuple, dict)):
            text = json.dumps(value, separators=(",", ":")).replace("true", "True").replace("false", "False")
        else:
            text = str(value)
        args += [f"--{key}", text]
    return args


def config_arg(files: Sequence[str]) -> str:
    """The ``--config_file`` value that merges ``files`` in order."""
    return "[" + ",".join(f"'{f}'" for f in files) + "]"


def command_line(args: Sequence[str]) -> str:
    """``python -m monai.bundle run <args>`` spelled as the README writes it, to copy into a shell.

    ``shlex.join`` quotes a config list ``['a.json','b.json']`` as ``''"'"'['"'"'a.json...``: a value with
    single quotes and nothing a double-quoted shell string expands goes in double quotes instead.
    """
    words = []
    for arg in args:
        if "'" in arg and not any(c in arg for c in '"$`\\!'):
            words.append(f'"{arg}"')
        else:
            words.append(shlex.quote(arg))
    return " ".join(["python", "-m", "monai.bundle", "run", *words])


def is_monai_notice(line: str) -> bool:
    """Whether an output line of ``monai.bundle run`` is one of :data:`MONAI_NOTICES` (the location notice
    comes with MONAI's time stamp and level in front)."""
    return line.startswith(MONAI_NOTICES[0]) or f" - WARNING - {MONAI_NOTICES[1]}" in line


def run_bundle(
    args: list[str], log_file: Path | None = None, on_line: Callable[[str], None] = print, cwd: str | Path | None = None
) -> None:
    """One ``monai.bundle run`` in a subprocess of this interpreter.

    Args:
        args: the arguments after ``run`` (the workflow, ``--config_file``, overrides).
        log_file: appended with the command and its whole output; None keeps no log.
        on_line: called with every output line (a filter for the console).
        cwd: working directory of the command.

    Raises:
        InputError: when the command fails, naming the log file and the command's last line.
    """
    cmd = [sys.executable, "-m", "monai.bundle", "run", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file if log_file is not None else os.devnull, "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
        tail: list[str] = []
        for text in proc.stdout:
            log.write(text)
            text = text.rstrip("\n")
            tail = (tail + [text])[-20:]
            on_line(text)
        if proc.wait() != 0:
            last = next((t for t in reversed(tail) if t.strip()), "")
            where = f" (see {log_file})" if log_file is not None else ""
            raise InputError(f"'{' '.join(args[:1])}' failed{where}: {last}")
