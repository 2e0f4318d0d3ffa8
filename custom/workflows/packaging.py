"""A MONAI Model Zoo release archive of the bundle: ``<name>_v<version>.zip``, self-contained.

Layout of the archive (one top folder named like the bundle, as ``monai.bundle download`` extracts it)::

    <name>/
        LICENSE
        large_files.yml        weights left out of the archive: path, url, hash (download_large_files)
        configs/               every config of bundle/configs (metadata.json, train.json, ...)
        custom/                the Python package the configs reference (includes resources/, the
                               metadata JSON schema copy to verify against offline)
        docs/                  README.md (model card), data_license.txt
        tests/                 the bundle's unit test in the zoo's style (train, evaluate, infer on demo data)
        models/                model.pt / model.ts when they are at most ``max_file_mb``

Run from the extracted ``<name>/`` folder, ``python -m monai.bundle ...`` imports ``custom`` from
there: ``python -m`` puts the working directory first on ``sys.path`` (and ``ConfigWorkflow.run``
adds the parent of ``configs/``), and ``bundle_root`` falls back to ``.`` when there is no
``bundle/configs`` below the working directory.

The bundle name is the Model Zoo folder name derived from ``metadata.json``'s ``name``
(:func:`bundle_name`). Weights larger than the Model Zoo's file limit (25 MB) stay out of the archive
and are listed in ``large_files.yml``: its ``url`` is the ``weights_url`` given at export, else the
repository template's value, an empty placeholder until the weights are uploaded (no invented
address); ``hash_val`` is the SHA-256 of the file actually left out, or empty when there was none.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from custom.cli import run as run_command
from custom.errors import InputError
from custom.fileio import atomic_file
from custom.paths import BUNDLE_DIR, REPO_ROOT
from custom.provenance import file_sha256

__all__ = [
    "MODEL_ZOO_FILE_LIMIT_MB",
    "WEIGHT_FILES",
    "bundle_name",
    "export_bundle",
    "export_bundle_command",
    "large_files_entries",
    "main",
]

logger = logging.getLogger("nunet")

MODEL_ZOO_FILE_LIMIT_MB = 25.0
WEIGHT_FILES = ("model.pt", "model.ts")
MODEL_CARD = "model.json"  # custom.deploy.release: written beside the released model.pt
# a fixed timestamp makes the archive depend on the file contents only
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".DS_Store"}


def bundle_name(metadata: dict) -> str:
    """The Model Zoo folder name of a bundle: ``metadata["name"]`` in snake case.

    As the Model Zoo names its folders ("Spleen CT segmentation" -> ``spleen_ct_segmentation``):
    lower case, runs of other characters become ``_``; hyphens inside a word are dropped so that
    "Breast ultrasound N-Unet" gives ``breast_ultrasound_nunet``.
    """
    name = re.sub(r"[^0-9a-z]+", "_", str(metadata.get("name", "")).lower().replace("-", "")).strip("_")
    if not name:
        raise ValueError("metadata.json has no usable 'name' to derive the bundle name from.")
    return name


def large_files_entries(
    template: Path, models_dir: Path, max_file_mb: float, weights_url: str = ""
) -> tuple[list[dict], list[Path]]:
    """Splits the weights into those that go into the archive and the ``large_files.yml`` entries of the others.

    Args:
        template: the repository's ``large_files.yml`` (entries with ``path``, ``url``, ``hash_val``, ``hash_type``).
        models_dir: folder holding the trained ``model.pt`` / ``model.ts`` (may be missing).
        max_file_mb: files above this size are left out of the archive.
        weights_url: download address of the left-out weights; ``{file}`` is replaced by the file name.

    Returns:
        the entries for the archive's ``large_files.yml`` and the weight files to put into the archive.
    """
    listed = {e["path"]: dict(e) for e in (yaml.safe_load(template.read_text()) or {}).get("large_files") or []}
    included: list[Path] = []
    for name in WEIGHT_FILES:
        path = models_dir / name
        key = f"models/{name}"
        if not path.is_file():
            continue
        if path.stat().st_size <= max_file_mb * 1024 * 1024:
            included.append(path)
            listed.pop(key, None)  # in the archive: nothing to download
            continue
        entry = listed.setdefault(key, {"path": key, "url": ""})
        entry.update(hash_val=file_sha256(path), hash_type="sha256")
        if weights_url:
            entry["url"] = weights_url.replace("{file}", name)
    return list(listed.values()), included


def _tree(root: Path) -> Iterator[Path]:
    """Files under ``root``, sorted, without caches and temporary files."""
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if (
            path.is_file()
            and not SKIPPED_NAMES.intersection(parts)
            and path.suffix != ".pyc"
            and ".tmp" not in path.name
        ):
            yield path


def zoo_json(text: str) -> str:
    """``text`` (a JSON document) as the Model Zoo's ``pretty-format-json --no-sort-keys --indent=4`` hook wants it.

    The repository's configs keep short objects on one line for reading; the archive holds the zoo's form.
    """
    return json.dumps(json.loads(text), indent=4) + "\n"


def _add(archive: zipfile.ZipFile, arcname: str, data: bytes | None = None, source: Path | None = None) -> None:
    if data is None and source is not None and source.suffix == ".json":
        data = zoo_json(source.read_text(encoding="utf-8")).encode()
    info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE_TIME)
    info.external_attr = (0o40755 << 16) | 0x10 if arcname.endswith("/") else 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED if arcname.endswith("/") else zipfile.ZIP_DEFLATED
    archive.writestr(info, data if data is not None else (source.read_bytes() if source else b""))


def export_bundle(
    out_dir: str,
    bundle_dir: str | None = None,
    package_dir: str | None = None,
    license_file: str | None = None,
    models_dir: str | None = None,
    weights_url: str = "",
    max_file_mb: float = MODEL_ZOO_FILE_LIMIT_MB,
) -> str:
    """Writes ``<out_dir>/<name>_v<version>.zip`` (see the module docstring) and returns its path.

    Args:
        out_dir: folder of the archive (created).
        bundle_dir: the bundle sources (``configs/``, ``docs/``, ``large_files.yml``); default ``<repo>/bundle``.
        package_dir: the ``custom`` package copied into the archive; default the one this module belongs to.
        license_file: the licence of the code; default ``<repo>/LICENSE``.
        models_dir: where the trained weights are; default ``<bundle_dir>/models``. Only ``model.pt`` and
            ``model.ts`` are taken (training checkpoints, logs and TensorBoard files never are).
        weights_url: download address written into ``large_files.yml`` for weights left out.
        max_file_mb: size above which weights are left out (Model Zoo limit: 25 MB).

    Raises:
        FileNotFoundError: when a required part (metadata.json, README.md, data_license.txt, LICENSE,
            large_files.yml, the package) is missing.
    """
    bundle = Path(bundle_dir) if bundle_dir else BUNDLE_DIR
    package = Path(package_dir) if package_dir else REPO_ROOT / "custom"
    license_path = Path(license_file) if license_file else REPO_ROOT / "LICENSE"
    models = Path(models_dir) if models_dir else bundle / "models"
    if models_dir and not models.is_dir():  # a typo would package the template's weights entry without a word
        raise InputError(f"--models_dir {models_dir}: no such folder.")
    required = [
        bundle / "configs" / "metadata.json",
        bundle / "docs" / "README.md",
        bundle / "docs" / "data_license.txt",
        bundle / "large_files.yml",
        license_path,
        package / "__init__.py",
    ]
    missing = [str(p) for p in required if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"cannot package the bundle, missing: {', '.join(missing)}")

    metadata = json.loads((bundle / "configs" / "metadata.json").read_text())
    name = bundle_name(metadata)
    entries, weights = large_files_entries(bundle / "large_files.yml", models, max_file_mb, weights_url)
    for entry in entries:
        if not entry.get("url"):
            logger.warning(
                "large_files.yml: %s has no download url yet; pass --weights_url once it is uploaded", entry["path"]
            )

    os.makedirs(out_dir, exist_ok=True)
    target = Path(out_dir) / f"{name}_v{metadata['version']}.zip"
    with atomic_file(target, durable=True) as f, zipfile.ZipFile(f, "w") as archive:
        _add(archive, f"{name}/")
        _add(archive, f"{name}/LICENSE", source=license_path)
        _add(archive, f"{name}/large_files.yml", yaml.safe_dump({"large_files": entries}, sort_keys=False).encode())
        for folder in ("configs", "docs", "tests"):
            for path in _tree(bundle / folder):
                _add(archive, f"{name}/{folder}/{path.relative_to(bundle / folder).as_posix()}", source=path)
        for path in _tree(package):
            _add(archive, f"{name}/custom/{path.relative_to(package).as_posix()}", source=path)
        _add(archive, f"{name}/models/")
        for path in weights:
            _add(archive, f"{name}/models/{path.name}", source=path)
        if (models / MODEL_CARD).is_file():  # the input size and figures of the weights, downloaded or not
            _add(archive, f"{name}/models/{MODEL_CARD}", source=models / MODEL_CARD)
    return str(target)


def export_bundle_command(
    out: str = "dist",
    models_dir: str | None = None,
    weights_url: str = "",
    max_file_mb: float = MODEL_ZOO_FILE_LIMIT_MB,
    bundle_dir: str | None = None,
) -> None:
    """Packages the bundle into ``out`` as ``<name>_v<version>.zip`` and prints the archive's path.

    ``python scripts/export_bundle.py --out dist/ [--models_dir runs/busi_fold0]
    [--weights_url https://host/releases/{file}]``: weights (``model.pt``/``model.ts`` of ``models_dir``,
    default ``bundle/models``) above ``max_file_mb`` go into ``large_files.yml`` with ``weights_url`` instead.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    print(
        export_bundle(
            out, bundle_dir=bundle_dir, models_dir=models_dir, weights_url=weights_url, max_file_mb=max_file_mb
        )
    )


def main() -> None:
    """``nunet-export-bundle`` and ``scripts/export_bundle.py``: :func:`export_bundle_command` on the command line."""
    run_command(export_bundle_command)
