"""N-Unet MONAI bundle: project code (data, transforms, networks, losses, engine glue, evaluation).

``__version__`` is the bundle's version, kept in one place: ``version`` of ``configs/metadata.json``
(the Model Zoo reads it there; ``pyproject.toml`` declares the package's version dynamic and pip reads
it from here). A copy installed without the bundle beside it reports its installed distribution's.
"""

from __future__ import annotations

import json

from .paths import CONFIGS_DIR

__all__ = ["__version__"]


def _bundle_version() -> str:
    metadata = CONFIGS_DIR / "metadata.json"
    if metadata.is_file():
        return str(json.loads(metadata.read_text(encoding="utf-8"))["version"])
    from importlib.metadata import version

    return version("nunet-bundle")


__version__ = _bundle_version()
