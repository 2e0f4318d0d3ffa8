"""What produced an artefact: tool, arguments, git commit and library versions (every artefact records its origin).

:func:`provenance` is the ``produced_by`` block of prepared datasets, cross-validation summaries and
reports. A training run records more (:class:`RunProvenance`, written by
:class:`custom.engine.ResumableCheckpoint` to ``<output_dir>/provenance.json`` and into every
checkpoint): the command line, the full merged config with its overrides, the resolved values of
its plain keys, and the SHA-256 of the datalist file and of the training records.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
_PACKAGES = ("numpy", "pillow", "scikit-image", "scipy", "torch", "monai", "pytorch-ignite")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def provenance(tool: str, args: Mapping[str, Any], created: bool = False) -> dict[str, Any]:
    """A ``produced_by`` block: ``git_commit`` is None outside a git checkout or before the first commit.

    Without ``created`` (a UTC timestamp) the block depends only on the code, the tool and its
    arguments, so an artefact made twice from the same input (datalist, fold files) is byte-identical;
    records of runs pass ``created=True``.
    """
    status = _git("status", "--porcelain")
    block = {
        "tool": tool,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()},
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in _PACKAGES},
    }
    if created:
        block["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return block


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def records_sha256(records: Sequence[Mapping[str, Any]]) -> str:
    """Hex SHA-256 of ``records`` as canonical JSON (sorted keys), independent of how they were stored."""
    text = json.dumps(list(records), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    """``value`` as JSON data: anything JSON cannot hold (a device, a path object) becomes its ``str``."""
    return json.loads(json.dumps(value, default=str))


def _is_plain(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


def running_bundle_parser() -> Any | None:
    """The ``monai.bundle.ConfigParser`` whose content is being evaluated by the caller, or None.

    MONAI hands a component no reference to the config that built it. Every bundle run (``monai.bundle
    run``, MONAI Label, ``ConfigWorkflow``) evaluates the config's items from inside
    ``ConfigParser.get_parsed_content``, so the parser is one of the caller's frames.
    """
    from monai.bundle import ConfigParser

    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, ConfigParser):
            return candidate
        frame = frame.f_back
    return None


def bundle_run_provenance(parser: Any | None) -> dict[str, Any]:
    """What produced a bundle run: :func:`provenance` of its command line, plus its config and datalist.

    Args:
        parser: the run's ``ConfigParser`` (see :func:`running_bundle_parser`); None records no config.

    Returns:
        ``provenance`` keys plus ``config`` (the merged config files with every override applied, as
        run), ``resolved`` (the values of its top-level keys that resolved to plain data, such as
        ``dataset_dir``, ``epochs``, ``output_dir``) and ``datalist`` (``path`` and ``sha256`` when the
        config names a ``datalist`` file).
    """
    record = provenance("monai.bundle run", {"argv": list(sys.argv)}, created=True)
    if parser is not None:
        record["config"] = _plain(parser.get())
        resolved = parser.ref_resolver.resolved_content
        # top-level ids only: nested ones ("train#dataset#data") are parts of objects, not settings
        top_level = {k: v for k, v in resolved.items() if k and not any(sep in k for sep in ("#", "::"))}
        record["resolved"] = _plain({k: v for k, v in top_level.items() if _is_plain(v)})
        datalist = resolved.get("datalist")
        if isinstance(datalist, str) and Path(datalist).is_file():
            record["datalist"] = {"path": str(Path(datalist).resolve()), "sha256": file_sha256(datalist)}
    return record


class RunProvenance:
    """The provenance of every invocation of one training run (the first, then each ``--resume``).

    Saved in each checkpoint through ``state_dict`` (plain data, so ``torch.load(weights_only=True)``
    reads it); a resumed run loads the earlier invocations and appends its own.

    Args:
        current: this invocation's record (see :func:`bundle_run_provenance`).
    """

    def __init__(self, current: dict[str, Any]) -> None:
        self.current = current
        self.previous: list[dict[str, Any]] = []

    def runs(self) -> list[dict[str, Any]]:
        """Every invocation, oldest first."""
        return [*self.previous, self.current]

    def state_dict(self) -> dict[str, Any]:
        return {"runs": self.runs()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.previous = list(state["runs"])
