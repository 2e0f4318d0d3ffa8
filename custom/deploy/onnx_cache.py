"""ONNX models exported once per weights file, kept in a cache outside the bundle.

Exporting N-Unet to ONNX took 5.5 s at the start of every CPU inference run. The export depends only
on the weights and the network they are loaded into, so it is done once: the model is cached under
``<cache>/<SHA-256 of the weights file>-<digest of the network>.onnx`` (the digest covers the
network's structure, the opset and the torch version: the same weights in a network built with
other settings give another graph). The cache folder is ``$NUNET_ONNX_CACHE``, else
``$XDG_CACHE_HOME/nunet/onnx``, else ``~/.cache/nunet/onnx``: outside the bundle, which may be
read-only once installed.

Each model is written atomically beside a ``.sha256`` file of its own digest; a cached model whose
content no longer matches it (a truncated copy, a flipped bit, a write that was interrupted between
the two files) is exported again. A cache that cannot be written (a read-only home) costs the export,
with a warning, and nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
import torch.nn as nn

from custom.errors import OutputError
from custom.fileio import atomic_file, atomic_write_text
from custom.provenance import file_sha256

from .onnx import OPSET, export_onnx

__all__ = ["CACHE_VARIABLE", "cached_onnx_file", "onnx_cache_dir", "onnx_model"]

logger = logging.getLogger("nunet")

CACHE_VARIABLE = "NUNET_ONNX_CACHE"
DIGEST_SUFFIX = ".sha256"


def onnx_cache_dir() -> Path:
    """The folder of the cached ONNX models: ``$NUNET_ONNX_CACHE``, else ``$XDG_CACHE_HOME/nunet/onnx``, else
    ``~/.cache/nunet/onnx``."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nunet" / "onnx"


def cached_onnx_file(weights_sha256: str, network: nn.Module) -> Path:
    """Where the ONNX model of ``network`` holding the weights of SHA-256 ``weights_sha256`` is cached."""
    described = f"{type(network).__module__}.{type(network).__qualname__}\n{network!r}\n{OPSET}\n{torch.__version__}"
    return onnx_cache_dir() / f"{weights_sha256}-{hashlib.sha256(described.encode()).hexdigest()[:12]}.onnx"


def onnx_model(network: nn.Module, example: torch.Tensor, cached: Path | None) -> bytes | str:
    """The ONNX model of ``network`` (:func:`export_onnx` of ``example``): the file ``cached`` when it is there
    intact, else exported and written there; the model's bytes when ``cached`` is None or cannot be written."""
    digest_file = cached.with_name(cached.name + DIGEST_SUFFIX) if cached is not None else None
    if cached is not None and cached.is_file():
        if digest_file.is_file() and digest_file.read_text().strip() == file_sha256(cached):
            return str(cached)
        logger.warning("%s: the cached ONNX model is damaged; exporting it again", cached)
    model, _ = export_onnx(network, example)
    if cached is None:
        return model
    try:
        with atomic_file(cached) as f:
            f.write(model)
        atomic_write_text(digest_file, hashlib.sha256(model).hexdigest() + "\n", durable=False)
    except (OutputError, OSError) as e:  # a read-only home, a full disk, a file where the folder should be
        logger.warning(
            "%s; the ONNX model is exported for this run only (set %s to a writable folder)", e, CACHE_VARIABLE
        )
        return model
    logger.info("ONNX model cached in %s", cached)
    return str(cached)
