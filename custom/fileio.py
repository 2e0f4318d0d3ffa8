"""Atomic file writing: every artefact a later stage reads is written to a temporary file and renamed.

A reader therefore sees either the previous complete file or the new complete file, never half of
one (a killed run, a full disk). A write that fails raises :class:`custom.errors.OutputError` naming
the file, which a bundle run prints as one line. JSON is written strictly: NaN and infinities become ``null``.

Also here: :func:`check_output_dir`, the guard that keeps inference from writing into its input folder.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from custom.errors import InputError, OutputError


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A temporary path that replaces ``path`` when the ``with`` block succeeds, for writers that take a file name.

    The temporary file is a hidden, uniquely named sibling (same file system, so ``os.replace`` is atomic)
    ending in ``suffix`` (NIfTI and ITK choose their format by it). The folder is created first: every
    writer of the project goes through here, so none fails on an output folder that does not exist yet.
    An ``OSError`` (disk full, read-only folder) becomes :class:`OutputError` naming ``path``; the previous
    file is kept and the temporary one removed.
    """
    path = Path(path)
    # at most 110 characters whatever the target's length: a legal 255-character name must not
    # become an illegal temporary one
    tmp = path.parent / f".{path.name[:64]}.{os.getpid()}.{uuid.uuid4().hex}.tmp{suffix}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write it ({e.strerror or e})") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", durable: bool = False) -> Iterator[IO]:
    """A file handle whose content replaces ``path`` only when the ``with`` block succeeds (:func:`atomic_path`).

    The temporary file is opened with ``"x"`` rather than through ``tempfile.mkstemp``, whose 0600 mode
    would stick to the result. ``durable`` also flushes it to the disk before the rename, so the new
    content survives a power cut and not only a killed process.

    Args:
        path: the file to write.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8, newlines as written).
        durable: ``fsync`` before the rename.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
    with atomic_path(path) as tmp, open(tmp, mode.replace("w", "x"), **text) as f:
        yield f
        if durable:
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    """Writes ``text`` to ``path`` atomically, and by default durably (see :func:`atomic_file`)."""
    with atomic_file(path, "w", durable=durable) as f:
        f.write(text)


def to_json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    return value


def atomic_write_json(path: str | os.PathLike, obj: Any, durable: bool = True) -> None:
    """Writes ``obj`` as indented, strictly valid JSON, atomically (and by default durably)."""
    atomic_write_text(path, json.dumps(to_json_safe(obj), indent=2, allow_nan=False) + "\n", durable)


def read_json(path: str | os.PathLike, missing: str) -> Any:
    """The JSON document at ``path``; :class:`InputError` naming it when it is missing (``missing`` says what
    to do) or not valid JSON (a run that was stopped while writing it, or a hand edit)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: does not exist; {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: is not valid JSON ({e})") from None


def check_outside(out: str | os.PathLike, inputs: Iterable[str | os.PathLike], option: str = "--out") -> None:
    """Refuses an output folder that is one of the ``inputs`` folders or lies inside one.

    Every tool writes into a folder of its own: outputs inside an input folder would be read as inputs
    by the next run (an unexpected ``out/`` in a folder of images, masks listed as images) or overwrite
    them. Folders are compared after resolving links.

    Raises:
        InputError: naming the option, the output and the input folder.
    """
    target = Path(out).resolve()
    for source in inputs:
        folder = Path(source).resolve()
        if target == folder or folder in target.parents:
            where = "is" if target == folder else "is inside"
            raise InputError(
                f"{option} {out} {where} the input folder {source}: the next run would read the outputs as "
                "inputs; choose a folder outside it."
            )


def check_not_an_input(out: str | os.PathLike, inputs: Mapping[str, str | os.PathLike], option: str) -> None:
    """Refuses an output file that is one of the files the tool reads from (after resolving links).

    An export named like its checkpoint (``--out model.pt``), or a release into the fold it is made
    from, replaced the weights it was made from: the tool's own input, lost for good.

    Args:
        out: the file the tool writes.
        inputs: what each input is (for the message) -> its path.
        option: the option that names ``out``.

    Raises:
        InputError: naming the option, the output and the input it would replace.
    """
    target = Path(out).resolve()
    for what, source in inputs.items():
        if Path(source).resolve() == target:
            raise InputError(
                f"{option} {out}: is {what} ({source}); writing it would replace what it is made from, "
                "choose another name."
            )


def check_output_dir(output_dir: str | os.PathLike, records: Iterable[Mapping[str, Any]], key: str = "image") -> bool:
    """Refuses an inference output folder that is, or lies inside, the folder of an input image; returns True otherwise.

    Inference writes ``<stem>_seg.png`` and ``<stem>.json`` into ``output_dir``. In the folder of an
    input image a later run would read those outputs as inputs, and an input named like an output
    (``a_seg.png`` next to ``a.png``) would be overwritten (see :func:`check_outside`).

    Args:
        output_dir: the inference output folder.
        records: the inference records (``{"image": path}``).
        key: the record key of the input image path.

    The folder is then created (with its parents), whatever the inputs' format: the writers of every
    format (PNG, NIfTI, NRRD, the overlays, ``results.csv``) find it there.

    Raises:
        InputError: naming the output folder and the input folder, the output "folder" that is a file,
            or a folder that cannot be created (a read-only location).
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InputError(f"--output_dir {output_dir}: is a file, not a folder.")
    check_outside(output_dir, {Path(record[key]).parent for record in records}, "--output_dir")
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(
            f"--output_dir {output_dir}: cannot be created ({e.strerror or e}); choose a writable folder."
        ) from e
    return True
