"""Names of image files: an input's stem, and the stems of the outputs written for a run's inputs.

Every output of an input (``<stem>_seg.png``, ``<stem>.json``, ``<stem>_overlay.png``) is named by one
stem, unique within the run (:func:`with_output_stems`), so no result is written over another.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import os
from pathlib import Path

from custom.imageio.registry import IMAGE_SUFFIXES, is_image_file


def file_stem(name: str) -> str:
    """``name`` without its image suffix (``scan.nii.gz`` -> ``scan``); a name without one is its own stem.

    PACS exports name files by UID: ``1.2.840.113619.2.55.3`` has no suffix ``.3``, and two files of
    a series, ``...55.3`` and ``...55.4``, must not share the stem ``...55``.
    """
    lower = name.lower()
    suffix = next((s for s in IMAGE_SUFFIXES if lower.endswith(s)), None)
    return name[: -len(suffix)] if suffix else name


def is_hidden(name: str) -> bool:
    """Operating-system bookkeeping (``.DS_Store``, ``._x.png``), skipped silently when listing folders."""
    return name.startswith(".")


OUTPUT_STEM = "output_stem"  # the record key of the stem of an input's outputs
# the longest name an output adds to its stem ("<stem>_overlay.png"), within the 255 bytes of a file name
LONGEST_OUTPUT_SUFFIX = len("_overlay.png")
MAX_STEM_BYTES = 255 - LONGEST_OUTPUT_SUFFIX


def fit_stem(stem: str) -> str:
    """``stem``, or when its outputs' names would pass the file system's 255 bytes, its start and a hash of the whole
    (so two long names that share their start still get different outputs)."""
    if len(stem.encode()) <= MAX_STEM_BYTES:
        return stem
    digest = hashlib.sha1(stem.encode()).hexdigest()[:8]
    start = stem.encode()[: MAX_STEM_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{start}_{digest}"


def with_output_stems(records: list[dict]) -> list[dict]:
    """``records``, each with its own ``output_stem``: no two inputs of a run share an output name.

    Each starts from :func:`output_stem`. Names that still collide within the run (case ignored, as on
    macOS and Windows file systems): one name in two folders of a datalist, the same file listed twice,
    or a generated name equal to another input's (frame 0 of ``a.dcm`` and ``a_frame0.png``; ``a_png``
    made for ``a.png`` beside ``a.tif`` and an input ``a_png.jpg``) get their folder's name in front and,
    if that is not enough, a number behind (``_2``, ``_3``, ...), never a name another input keeps. A
    collision used to write the second result over the first without a word.
    """
    stems = [output_stem(r["image"], r.get("frame")) for r in records]
    counts = collections.Counter(s.lower() for s in stems)
    taken = {s.lower() for s in stems if counts[s.lower()] == 1}
    named = []
    for record, stem in zip(records, stems):
        if counts[stem.lower()] > 1:
            base = stem = f"{Path(record['image']).resolve().parent.name}_{stem}"
            number = 2
            while stem.lower() in taken:
                stem, number = f"{base}_{number}", number + 1
            taken.add(stem.lower())
        named.append({**record, OUTPUT_STEM: fit_stem(stem)})
    return named


def output_stem(image: str, frame: int | None = None) -> str:
    """The stem of an input image's outputs (``<stem>_seg.png``, ``<stem>.json``), before a run's other inputs
    are considered (:func:`with_output_stems` makes the names of a run unique).

    The file name without its extension; when another image in the same folder has the same stem
    (``a.png`` beside ``a.tif``), the extension is kept in it (``a_png``, ``a_tif``), so the two
    never overwrite each other's outputs; a name without extension is a stem of its own (``x`` beside
    ``x.png``: ``x`` and ``x_png``). Frame ``k`` of a file of several frames adds ``_frame<k>``.
    """
    folder, name = os.path.split(os.path.abspath(image))
    stem = file_stem(name)
    if _stem_counts(folder, os.stat(folder).st_mtime_ns)[stem.lower()] > 1 and name != stem:
        stem = f"{stem}_{name[len(stem):].lstrip('.').replace('.', '_').lower()}"
    return fit_stem(stem if frame is None else f"{stem}_frame{frame}")


@functools.lru_cache(maxsize=8)
def _stem_counts(folder: str, mtime_ns: int) -> collections.Counter:
    # keyed by the folder's modification time: one listing per folder and change, not one per image
    # (a scan of the folder per image made 2000 images quadratic)
    return collections.Counter(file_stem(n).lower() for n in os.listdir(folder) if is_image_file(Path(folder, n)))
