"""Package faces whose names are imported on first use (PEP 562).

A face that imports every module of its package makes each user pay for all of them: the datalist
loader pulls in MONAI (~5 s), which dataset preparation does not need, and a run's summary pulls in the
size tiers of dataset preparation, which inference does not load. :func:`lazy_face` gives such a face
the module-level ``__getattr__`` and ``__dir__`` that import a name's module when the name is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_face(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the face of ``package``, whose ``exports`` map each name to its module.

    Usage, in ``package/__init__.py``: ``__getattr__, __dir__ = lazy_face(__name__, {"name": "module", ...})``.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
