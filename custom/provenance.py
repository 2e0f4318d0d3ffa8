"""What produced an artefact: tool, arguments, git commit and library versions (every artefact records its origin)."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
_PACKAGES = ("numpy", "pillow", "scikit-image", "scipy", "torch", "monai")


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


def provenance(tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """A ``produced_by`` block: ``git_commit`` is None outside a git checkout or before the first commit."""
    status = _git("status", "--porcelain")
    return {
        "tool": tool,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()},
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in _PACKAGES},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
