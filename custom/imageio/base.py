"""What every medical format gives and takes: :class:`Frame` s, and the :class:`MedicalCodec` interface.

As nnU-Net's ``BaseReaderWriter``: one codec per format family (DICOM, NIfTI, NRRD, MetaImage) reads a
file as a list of frames and, where the family can hold a mask, writes one in the geometry of an input
of it; :mod:`custom.imageio.registry` chooses a file's codec by its name, else by its content.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from custom.errors import DataError


@dataclass
class Frame:
    """One 2D picture of a medical file.

    Attributes:
        pixels: ``(H, W)`` or ``(H, W, C)`` array (rows first, channels last), in the file's own values.
        spacing: millimetres per pixel along rows and columns, or None when the file states none.
        region: the ultrasound region the file states, ``(x0, y0, x1, y1)`` in pixel columns and rows,
            ends excluded (DICOM's Sequence of Ultrasound Regions), or None.
    """

    pixels: np.ndarray
    spacing: tuple[float, float] | None = None
    region: tuple[int, int, int, int] | None = None


class MedicalCodec(ABC):
    """The reader (and writer of masks) of one family of medical files.

    Args:
        name: the family's name in messages (``"DICOM"``).
        suffixes: the file-name suffixes of the family, lower case.
        mask_suffixes: for each input suffix, the suffix of a mask written in that input's geometry
            (:meth:`write_mask_like`); empty for a family whose masks are written as PNG.
    """

    def __init__(self, name: str, suffixes: tuple[str, ...], mask_suffixes: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.suffixes = suffixes
        self.mask_suffixes = dict(mask_suffixes or {})

    @abstractmethod
    def read_frames(self, path: Path) -> list[Frame]:
        """The frames of the file at ``path``; any exception of the format's library means "not readable"."""

    def count_frames(self, path: Path) -> int | None:
        """How many frames the file at ``path`` holds, from its header alone; None when only its pixels tell."""
        return None

    def write_mask_like(self, source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
        """Writes ``mask`` (``(H, W)`` uint8) to ``path`` with the geometry of frame ``frame`` of ``source``; only
        a family with ``mask_suffixes`` can."""
        raise NotImplementedError(f"{self.name}: masks are written as PNG")


def stack_frames(volume: np.ndarray, path: Path, channels: bool = False) -> list[np.ndarray]:
    """``(H, W)`` pictures (``(H, W, C)`` with ``channels``, last axis) from an array whose first two axes are x
    (columns) and y (rows) and whose third, when it has one, counts the frames."""
    if volume.ndim == 2 + channels:
        volume = volume[:, :, None]
    if volume.ndim != 3 + channels or min(volume.shape[:2]) < 1:
        raise DataError(f"{path}: expected a 2D image or a stack of 2D frames, got shape {volume.shape}")
    return [np.ascontiguousarray(volume[:, :, k].swapaxes(0, 1)) for k in range(volume.shape[2])]


def check_file(path: Path) -> None:
    """Raises :class:`DataError` naming ``path`` when it is missing or empty."""
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: zero-byte file")
