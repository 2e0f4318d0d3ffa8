"""Writes the Model Zoo release archive ``<name>_v<version>.zip`` of the bundle (see custom/workflows/packaging.py).

python scripts/export_bundle.py --out dist/
python scripts/export_bundle.py --out dist/ --models_dir runs/busi_fold0 --weights_url https://host/releases/{file}
"""

from __future__ import annotations

import logging

from custom.cli import run as run_command
from custom.workflows.packaging import MODEL_ZOO_FILE_LIMIT_MB, export_bundle


def main(
    out: str = "dist",
    models_dir: str | None = None,
    weights_url: str = "",
    max_file_mb: float = MODEL_ZOO_FILE_LIMIT_MB,
    bundle_dir: str | None = None,
) -> None:
    """Packages the bundle into ``out``; weights (``model.pt``/``model.ts`` of ``models_dir``, default
    ``bundle/models``) above ``max_file_mb`` go into ``large_files.yml`` with ``weights_url`` instead."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    print(
        export_bundle(
            out, bundle_dir=bundle_dir, models_dir=models_dir, weights_url=weights_url, max_file_mb=max_file_mb
        )
    )


if __name__ == "__main__":
    run_command(main)
