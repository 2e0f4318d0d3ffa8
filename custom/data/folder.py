"""Reader of any dataset of image + mask pairs in two folders, with classes from a CSV or from the masks.

- ``--images <dir>``: the images (PNG, JPEG, BMP, TIFF of any mode; DICOM, NIfTI, NRRD, MetaImage).
  The case id is the file name without its suffix. A file of several frames (a DICOM cine loop, a
  stack of slices) gives a case per frame, ``<stem>_frame<k>``; its frames are one acquisition, kept
  on one side of every split (unless ``--group_pattern`` names the patients).
- ``--masks <dir>``: for image ``<stem>.<ext>``, the mask ``<stem>.<any ext>`` or ``<stem>_mask.<any
  ext>``; any non-zero pixel is lesion. It must have the image's size. For frame ``k`` of a file of
  several frames: a mask file of as many frames, or one per frame named after the case id.
- ``--labels <csv>`` (optional): ``,`` or ``;`` separated, with a header holding the columns
  ``image`` (file name or id) and ``class`` (normal, benign, malignant or lesion; any case).
  Without it the mask decides: an empty mask is ``normal`` (class 0), any other is ``lesion``
  (class 1), because a mask cannot tell benign from malignant. The record's ``lesion`` field (0/1)
  is all a lesion-vs-normal model needs; ``class`` 1 then means "lesion", listed as such under
  ``classes`` in the datalist.
- ``--group_pattern <regex>`` (optional): names the patient (or any acquisition unit) of each image
  from its file name: the first capture group of the pattern's first match, else the whole match
  (``"^([^_]+)_"`` makes ``ALWI_000.png`` patient ``ALWI``). Images of one patient stay on one side
  of every split; a file name the pattern does not match is a bad case.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from custom.data.pipeline import prepare
from custom.data.records import CLASS_INDEX, BadCase, CaseSource, LoadedCase, Scan
from custom.errors import DataError
from custom.imageio import (
    check_mask_size,
    file_stem,
    frame_count,
    is_hidden,
    is_image_file,
    medical_format,
    read_gray,
    read_mask,
)


def _files(folder: Path, what: str) -> tuple[list[Path], list[BadCase]]:
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder does not exist")
    entries = [p for p in sorted(folder.iterdir()) if not is_hidden(p.name)]
    if not entries:
        raise DataError(f"{folder}: empty {what} folder")
    files = [p for p in entries if p.is_file() and is_image_file(p)]
    bad = [BadCase(str(p), _why_not_an_image(p)) for p in entries if p not in files]
    return files, bad


def _why_not_an_image(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        return f"a broken link (its target {path.readlink()} does not exist)"
    return "a folder, not an image file" if path.is_dir() else "not an image file"


def _read_labels(path: Path) -> tuple[dict[str, tuple[int, str]], list[BadCase]]:
    """``id -> (line, class)`` from the labels CSV, and its unusable rows."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the labels file ({e})") from e
    first_line = text.split("\n", 1)[0]
    rows = list(csv.reader(text.splitlines(), delimiter=";" if ";" in first_line else ","))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "image" not in header or "class" not in header:
        raise DataError(f"{path}: expected a header with the columns image and class, got {first_line!r}")
    image_col, class_col = header.index("image"), header.index("class")
    labels: dict[str, tuple[int, str]] = {}
    bad = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(image_col, class_col):
            bad.append(BadCase(f"{path}:{line}", f"row has {len(row)} columns, expected {len(header)}"))
            continue
        case_id, value = file_stem(Path(row[image_col].strip()).name), row[class_col].strip().lower()
        if value not in CLASS_INDEX:
            expected = ", ".join(CLASS_INDEX)
            bad.append(BadCase(f"{path}:{line}", f"unknown class {row[class_col]!r} (expected {expected})"))
        elif case_id in labels:
            bad.append(BadCase(f"{path}:{line}", f"second row for {case_id!r} (first on line {labels[case_id][0]})"))
        else:
            labels[case_id] = (line, value)
    return labels, bad


def _group_regex(pattern: str | None) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise DataError(f"--group_pattern {pattern!r}: not a regular expression ({e})") from e


def _patient(regex: re.Pattern, name: str) -> str | None:
    match = regex.search(name)
    if match is None:
        return None
    return next((g for g in match.groups() if g), None) or match.group(0) or None


def scan_folder(images: Path, masks: Path, labels: Path | None = None, group_pattern: str | None = None) -> Scan:
    """Image / mask pairs (and classes, and patients) of two folders, and every file or row that does not fit."""
    regex = _group_regex(group_pattern)
    if images.resolve() == masks.resolve():
        raise DataError(f"{images}: --images and --masks must be different folders")
    image_files, bad = _files(images, "images")
    mask_files, mask_bad = _files(masks, "masks")
    bad += mask_bad
    classes, label_bad = _read_labels(labels) if labels else ({}, [])
    bad += label_bad
    masks_by_stem: dict[str, list[Path]] = {}
    for path in mask_files:
        masks_by_stem.setdefault(file_stem(path.name), []).append(path)
    used: set[Path] = set()
    cases = []
    for image in image_files:
        stem = file_stem(image.name)
        try:
            frames = frame_count(image) if medical_format(image) else 1
        except DataError as e:
            bad.append(BadCase(str(image), str(e).removeprefix(f"{image}: ")))
            continue
        for k in range(frames):
            case_id = stem if frames == 1 else f"{stem}_frame{k}"
            found = masks_by_stem.get(case_id, []) + masks_by_stem.get(f"{case_id}_mask", [])
            if not found and frames > 1:  # one mask file for the whole clip
                found = masks_by_stem.get(stem, []) + masks_by_stem.get(f"{stem}_mask", [])
            used.update(found)
            where = image if frames == 1 else f"{image}#frame{k}"
            if not found:
                expected = f"{masks / case_id}.png or {case_id}_mask.png"
                bad.append(BadCase(str(where), f"missing mask (expected {expected})"))
            elif len(found) > 1:
                bad.append(BadCase(str(where), f"several masks: {', '.join(m.name for m in found)}"))
            elif labels and stem not in classes:
                bad.append(BadCase(str(image), f"no row in {labels}"))
            elif regex is not None and _patient(regex, image.name) is None:
                bad.append(BadCase(str(image), f"file name does not match --group_pattern {group_pattern!r}"))
            else:
                class_name = classes[stem][1] if labels else None
                # the frames of one file are one acquisition: never split between training and test
                patient = _patient(regex, image.name) if regex is not None else (stem if frames > 1 else None)
                source = image.name if frames == 1 else f"{image.name}#frame{k}"
                cases.append(CaseSource(case_id, image, (found[0],), class_name, source, patient, k))
    image_stems = {file_stem(p.name) for p in image_files}
    bad += [BadCase(str(m), "mask without its image") for m in mask_files if m not in used]
    bad += [
        BadCase(f"{labels}:{line}", f"names {i!r}, which is not in {images}")
        for i, (line, _) in classes.items()
        if i not in image_stems
    ]
    return Scan(cases, bad, [images, masks])


def load_folder_case(case: CaseSource) -> LoadedCase:
    """Grayscale image and binary mask of the same size; class from the labels or from the mask."""
    check_mask_size(case.image, case.masks[0])
    mask_frames = frame_count(case.masks[0]) if medical_format(case.masks[0]) else 1
    image, mask = read_gray(case.image, case.frame), read_mask(case.masks[0], case.frame if mask_frames > 1 else 0)
    class_name = case.class_name or ("lesion" if mask.any() else "normal")
    return LoadedCase(image, mask, class_name)


def prepare_folder(
    images: str,
    masks: str,
    out: str,
    labels: str | None = None,
    dedup: str = "none",
    folds: int = 5,
    seed: int = 0,
    skip_bad: bool = False,
    cache_size: int | None = None,
    group_pattern: str | None = None,
) -> dict[str, Any]:
    """Prepares the pairs of ``images`` and ``masks`` (classes from ``labels`` or the masks) into ``out``;
    ``group_pattern`` names each image's patient from its file name (see the module docstring)."""
    options = dict(dedup=dedup, folds=folds, seed=seed, skip_bad=skip_bad, cache_size=cache_size)
    return prepare(
        Path(images).resolve().parent.name or "folder",
        scan_folder(Path(images), Path(masks), Path(labels) if labels else None, group_pattern),
        load_folder_case,
        out,
        tool=f"{__name__}.prepare_folder",
        args=dict(images=images, masks=masks, out=out, labels=labels, group_pattern=group_pattern, **options),
        **options,
    )
