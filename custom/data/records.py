"""Cases as readers find them, cases as loaded, cases left out, and the classes a record can have.

A reader (``busi``, ``bus_uclm``, ``folder``) turns a dataset folder into a :class:`Scan` of
:class:`CaseSource` entries; its loader turns one entry into a :class:`LoadedCase` (grayscale image,
binary mask, class). Everything after that (``pipeline``) is the same for every dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from custom.errors import DataError

# Class indices of the records (normal=0, benign=1, malignant=2, as the training configs expect).
# "lesion" is the class of a lesion whose type is unknown (folder datasets without labels): index 1,
# so ``class`` stays a valid binary label and ``lesion`` is right whatever the class list.
CLASS_INDEX = {"normal": 0, "benign": 1, "malignant": 2, "lesion": 1}
THREE_CLASSES = ("normal", "benign", "malignant")


@dataclass(frozen=True)
class CaseSource:
    """One image of a dataset and where its mask(s) and class come from.

    Attributes:
        id: unique, file-name safe identifier (the prepared files are ``images/<id>.png``).
        image: the image file.
        masks: mask files merged by logical OR (BUSI's ``_mask``, ``_mask_1``, ``_mask_2``).
        class_name: normal / benign / malignant, or None when the mask decides (normal or lesion).
        source: the image path relative to the dataset folder, kept in the record for traceability.
        patient: the patient (or any acquisition unit) the image comes from, when known: all images of
            one patient stay on one side of every split, as duplicates do.
        frame: the image's frame in a file of several (a DICOM cine loop, a stack of slices); the masks'
            same frame when they hold several, else their only one.
    """

    id: str
    image: Path
    masks: tuple[Path, ...]
    class_name: str | None
    source: str
    patient: str | None = None
    frame: int = 0


@dataclass(frozen=True)
class BadCase:
    """A file that could not be used, and why (listed in summary.json under ``--skip-bad``)."""

    file: str
    reason: str

    @classmethod
    def from_error(cls, error: DataError, file: str) -> BadCase:
        """The bad case of ``error``, whose message is ``"<file>: <problem>"`` (``file`` when it is not)."""
        named, sep, reason = str(error).partition(": ")
        return cls(named, reason) if sep else cls(file, str(error))

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


@dataclass
class LoadedCase:
    """A case's pixels: ``image`` uint8 ``(H, W)``, ``mask`` bool ``(H, W)``, and its class.

    ``note`` says what the loader changed (e.g. an image resized to its mask), for summary.json.
    """

    image: np.ndarray
    mask: np.ndarray
    class_name: str
    note: str | None = None


@dataclass
class Scan:
    """What a reader found: usable cases, files it could not use, and the folders it read from."""

    cases: list[CaseSource]
    bad: list[BadCase] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)


def check_class_against_mask(case: CaseSource, loaded: LoadedCase) -> None:
    """A normal image must have an empty mask and a lesion image a non-empty one."""
    has_lesion = bool(loaded.mask.any())
    if loaded.class_name == "normal" and has_lesion:
        raise DataError(f"{case.masks[0]}: the image is labelled normal but its mask has lesion pixels")
    if loaded.class_name != "normal" and not has_lesion:
        raise DataError(f"{case.masks[0]}: the image is labelled {loaded.class_name} but its mask is empty")


def drop_duplicate_ids(cases: list[CaseSource]) -> tuple[list[CaseSource], list[BadCase]]:
    """Keeps the first case of each id; every later one is a bad case naming both files."""
    first: dict[str, CaseSource] = {}
    kept, bad = [], []
    for case in cases:
        if case.id in first:
            bad.append(BadCase(str(case.image), f"duplicate id {case.id!r} (also {first[case.id].image})"))
        else:
            first[case.id] = case
            kept.append(case)
    return kept, bad
