"""A compact copy of a prepared dataset at one size, for machines where reading the originals is slow.

``cache_<size>.npz`` holds every case resized to ``size`` x ``size`` (images bicubic, masks nearest
neighbour) with its record:

- ``images_png``: all images stacked vertically into one ``(N*size, size)`` grayscale PNG (PNG's
  row filters compress ultrasound speckle far better than zlib alone: BUSI at 256 is ~29 MB as PNG
  against ~42 MB as a compressed uint8 array);
- ``masks``: ``(N, size, size)`` uint8 0/1 (zlib-compressed by ``savez_compressed``);
- ``records``: the JSON of the records (and what produced the cache), as a string.

No pickled objects, so ``np.load`` runs with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from custom.errors import DataError
from custom.fileio import atomic_file
from custom.imageio import png_bytes


def resize_image(gray: np.ndarray, size: int) -> np.ndarray:
    """``gray`` (uint8) resized to ``size`` x ``size``, bicubic."""
    return np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BICUBIC))


def write_cache(
    path: Path, records: Sequence[Mapping], images: Sequence[np.ndarray], masks: Sequence[np.ndarray], meta: Mapping
) -> None:
    """Writes the cache atomically; ``images`` uint8 and ``masks`` bool, all ``(size, size)``, in record order."""
    size = images[0].shape[0]
    content = json.dumps({"size": size, "produced_by": dict(meta), "records": list(records)})
    with atomic_file(path) as f:
        np.savez_compressed(
            f,
            images_png=np.frombuffer(png_bytes(np.concatenate(images)), dtype=np.uint8),
            masks=np.stack(masks).astype(np.uint8),
            records=np.array(content),
        )


def load_cache(path: str) -> list[dict]:
    """The records of a cache with ``image`` and ``label`` replaced by arrays.

    ``image``: uint8 ``(1, size, size)``; ``label``: uint8 ``(1, size, size)`` of 0/1 (channel first,
    as MONAI's dictionary transforms expect after ``EnsureChannelFirstd``).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            content = json.loads(str(npz["records"]))
            masks = npz["masks"]
            png = npz["images_png"].tobytes()
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path}: not a readable dataset cache ({e}); re-create it with --cache-size") from e
    size = content["size"]
    images = np.asarray(Image.open(io.BytesIO(png))).reshape(-1, size, size)
    records = content["records"]
    if not (len(images) == len(masks) == len(records)):
        raise DataError(f"{path}: {len(records)} records but {len(images)} images and {len(masks)} masks")
    return [{**r, "image": images[i][None], "label": masks[i][None]} for i, r in enumerate(records)]


def load_cached_split(cache: str, datalist: str, split: str = "training") -> list[dict]:
    """The cached cases of ``split`` of a fold (or datalist) file, in that file's order."""
    try:
        with open(datalist, encoding="utf-8") as f:
            ids = [r["id"] for r in json.load(f)[split]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{datalist}: cannot read split {split!r} with record ids ({e})") from e
    by_id = {r["id"]: r for r in load_cache(cache)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise DataError(f"{cache}: has no cached case {missing[0]!r} of {datalist} ({len(missing)} missing)")
    return [by_id[i] for i in ids]
