"""Recognising a medical file by its content, for names without an extension (PACS exports name files by number or UID).

What is recognised: the DICOM preamble's ``DICM``, a NIfTI-1 or NIfTI-2 header (gzipped or not) and an
NRRD's ``NRRD`` magic. :func:`custom.imageio.registry.medical_format` looks here only for a name without
an image extension: ``scan.png`` is never opened to be recognised.
"""

from __future__ import annotations

import gzip
from pathlib import Path

# NIfTI-1 and NIfTI-2 single-file headers: (header size, where the magic is, the magic)
_NIFTI_MAGICS = ((348, 344, b"n+1\0"), (540, 4, b"n+2\0"))


def sniff_format(path: Path) -> str | None:
    """The medical-format suffix of the file at ``path`` by its content (``.dcm``, ``.nii``, ``.nii.gz``, ``.nrrd``),
    or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(352)
        if head[:2] == b"\x1f\x8b":  # gzip: a compressed NIfTI, the usual form of one
            with gzip.open(path, "rb") as f:
                return ".nii.gz" if _is_nifti(f.read(352)) else None
    except (OSError, EOFError):  # unreadable, or a truncated gzip stream: not a file this package reads
        return None
    if head[128:132] == b"DICM":
        return ".dcm"
    if head[:4] == b"NRRD":
        return ".nrrd"
    return ".nii" if _is_nifti(head) else None


def _is_nifti(head: bytes) -> bool:
    return any(
        len(head) >= at + 4
        and head[at : at + 4] == magic
        and size in (int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big"))
        for size, at, magic in _NIFTI_MAGICS
    )
