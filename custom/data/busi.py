"""Reader of the BUSI layout (Al-Dhabyani et al., Data in Brief 28, 2020) and of the Curated BUSI list.

Layout: ``<src>/{benign,malignant,normal}/<class> (<n>).png`` with the mask ``<class> (<n>)_mask.png``
and, for images with several lesions, ``_mask_1.png``, ``_mask_2.png`` (merged by logical OR).
Images are 8-bit grayscale or RGB, masks 1-bit, RGB or RGBA; all are read whatever their mode.
Case ids are ``<class>_<n>`` with ``n`` zero-padded to 3 digits (``benign (7).png`` -> ``benign_007``).

Curated BUSI (Aumente-Maestro et al., section 4.3) keeps 450 of the 780 images: every member of every duplicate
group was removed. Its list is ``class;id`` (semicolon-separated, CRLF), ``id`` being ``n``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from custom.data.pipeline import prepare
from custom.data.records import THREE_CLASSES, BadCase, CaseSource, LoadedCase, Scan
from custom.errors import DataError
from custom.imageio import check_mask_size, is_hidden, is_image_name, read_gray, read_mask

_NAME = re.compile(r"(?P<cls>[a-z]+) \((?P<n>\d+)\)(?P<mask>_mask(?:_(?P<k>\d+))?)?", re.IGNORECASE)


def busi_id(class_name: str, n: int) -> str:
    """The case id of ``<class> (<n>).png``."""
    return f"{class_name}_{n:03d}"


def scan_busi(src: Path) -> Scan:
    """The cases of a BUSI folder, and every file that does not fit the layout."""
    if not src.is_dir():
        raise DataError(f"{src}: BUSI folder does not exist")
    bad: list[BadCase] = []
    class_dirs = []
    for entry in sorted(src.iterdir()):
        if is_hidden(entry.name):
            continue
        if entry.is_dir() and entry.name in THREE_CLASSES:
            class_dirs.append(entry)
        elif entry.is_dir():
            bad.append(BadCase(str(entry), f"unknown class folder (expected {', '.join(THREE_CLASSES)})"))
        else:
            bad.append(BadCase(str(entry), f"unexpected file (expected only the folders {', '.join(THREE_CLASSES)})"))
    if not class_dirs:
        raise DataError(f"{src}: no class folder ({', '.join(THREE_CLASSES)}) found; is this the BUSI folder?")
    cases = []
    for folder in class_dirs:
        folder_cases, folder_bad = _scan_class_folder(folder)
        cases += folder_cases
        bad += folder_bad
    return Scan(cases, bad, [src])


def _scan_class_folder(folder: Path) -> tuple[list[CaseSource], list[BadCase]]:
    class_name = folder.name
    images: dict[int, list[Path]] = {}
    masks: dict[int, list[tuple[int, Path]]] = {}
    bad = []
    entries = [e for e in sorted(folder.iterdir()) if not is_hidden(e.name)]
    if not entries:
        return [], [BadCase(str(folder), "empty class folder")]
    for entry in entries:
        match = _NAME.fullmatch(entry.stem)
        if entry.is_dir():
            bad.append(BadCase(str(entry), "unexpected folder inside a class folder"))
        elif not is_image_name(entry.name):
            bad.append(BadCase(str(entry), "not an image file"))
        elif match is None:
            bad.append(BadCase(str(entry), f"unexpected name (expected '{class_name} (<n>).png' or '..._mask.png')"))
        elif match["cls"].lower() != class_name:
            bad.append(BadCase(str(entry), f"a {match['cls'].lower()} file in the {class_name} folder"))
        elif match["mask"]:
            masks.setdefault(int(match["n"]), []).append((int(match["k"] or 0), entry))
        else:
            images.setdefault(int(match["n"]), []).append(entry)
    cases = []
    for n, files in sorted(images.items()):
        found = sorted(masks.get(n, []))
        numbers = [k for k, _ in found]
        for image in files:
            if not found or found[0][0] != 0:
                bad.append(BadCase(str(image), f"missing mask (expected '{image.stem}_mask.png')"))
                continue
            if len(set(numbers)) < len(numbers):  # x_mask.png beside x_mask.bmp: which one is the annotation?
                twins = ", ".join(path.name for k, path in found if numbers.count(k) > 1)
                bad.append(BadCase(str(image), f"several masks with one number ({twins}); keep one"))
                continue
            cases.append(
                CaseSource(
                    id=busi_id(class_name, n),
                    image=image,
                    masks=tuple(path for _, path in found),
                    class_name=class_name,
                    source=f"{class_name}/{image.name}",
                )
            )
    for n in sorted(set(masks) - set(images)):
        bad += [BadCase(str(path), "mask without its image") for _, path in sorted(masks[n])]
    return cases, bad


def load_busi_case(case: CaseSource) -> LoadedCase:
    """The grayscale image and the OR of its masks; every mask must have the image's size."""
    image = read_gray(case.image)
    mask = np.zeros(image.shape, dtype=bool)
    for path in case.masks:
        check_mask_size(case.image, path)
        mask |= read_mask(path)
    return LoadedCase(image, mask, case.class_name)


def read_curated_list(path: Path) -> set[str]:
    """Case ids of the images the Curated BUSI list keeps."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the Curated BUSI list ({e})") from e
    if not rows or [c.strip().lower() for c in rows[0]] != ["class", "id"]:
        raise DataError(f"{path}: expected a 'class;id' header (the Curated BUSI mapping file)")
    keep = set()
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or row[0].strip() not in THREE_CLASSES or not row[1].strip().isdigit():
            raise DataError(f"{path}: line {line} is {';'.join(row)!r}, expected '<benign|malignant|normal>;<number>'")
        keep.add(busi_id(row[0].strip(), int(row[1])))
    return keep


def prepare_busi(
    src: str,
    out: str,
    curated: str | None = None,
    dedup: str = "auto",
    folds: int = 5,
    seed: int = 0,
    skip_bad: bool = False,
    cache_size: int | None = None,
) -> dict[str, Any]:
    """Prepares BUSI (all 780 images, or the 450 of ``curated``) into ``out``; returns the summary.

    With ``curated``, duplicates are still searched among all images (when ``dedup`` is "auto"), so
    the summary scores the detector against the list: ``duplicates.against_reference``.
    """
    options = dict(dedup=dedup, folds=folds, seed=seed, skip_bad=skip_bad, cache_size=cache_size)
    scan = scan_busi(Path(src))
    exclude, reference = None, None
    if curated:
        keep = read_curated_list(Path(curated))
        ids = {c.id for c in scan.cases}
        missing = sorted(keep - ids)
        if missing and not skip_bad:
            raise DataError(f"{curated}: lists {missing[0]} ({len(missing)} in all), which {src} does not have")
        exclude = dict.fromkeys(ids - keep, "not in the Curated BUSI list (member of a duplicate group)")
        reference = ids - keep
    return prepare(
        "Curated BUSI" if curated else "BUSI",
        scan,
        load_busi_case,
        out,
        tool=f"{__name__}.prepare_busi",
        args=dict(src=src, out=out, curated=curated, **options),
        **options,
        exclude=exclude,
        reference_duplicates=reference,
    )
