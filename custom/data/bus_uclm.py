"""Reader of BUS-UCLM (683 images of 38 patients; N-Unet, section 4.1), built from its description.

Layout: ``<src>/INFO.csv``, ``<src>/images/<name>``, ``<src>/masks/<name>`` (same file name).

- ``INFO.csv``: UTF-8 with a byte-order mark, ``;``-separated, columns
  ``Image;Resolution;Label;Doppler;Marks;Combined``; ``Label`` is Benign, Malignant or Normal and
  gives the class (case id: the image's file name without its suffix).
- Masks are RGB: green = benign lesion, red = malignant lesion, black = background. Both colours are
  merged into one foreground (the paper's binary masks); the colour is cross-checked against
  ``Label`` (the majority colour of the lesion pixels must match it; a normal image has no lesion
  pixels), a disagreement being a bad case.
- Some images (13 RGBA images of one patient) are smaller than their 856x606 masks: such an image is
  resized to its mask's size (bicubic) and listed under ``adjusted`` in summary.json.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from custom.data.pipeline import prepare
from custom.data.records import THREE_CLASSES, BadCase, CaseSource, LoadedCase, Scan
from custom.errors import DataError
from custom.imageio import is_hidden, is_image_name, read_gray, read_mask_rgb


def _read_info(info: Path) -> tuple[list[tuple[int, str, str]], list[BadCase]]:
    """``(line, image name, class)`` of every usable row of INFO.csv, and the unusable ones."""
    if not info.is_file():
        raise DataError(f"{info}: INFO.csv does not exist; is this the BUS-UCLM folder?")
    try:
        with open(info, encoding="utf-8-sig", newline="") as f:  # utf-8-sig drops the byte-order mark
            rows = list(csv.reader(f, delimiter=";"))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{info}: cannot read ({e})") from e
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "image" not in header or "label" not in header:
        raise DataError(f"{info}: expected a header with the columns Image and Label (';'-separated), got {rows[:1]}")
    image_col, label_col = header.index("image"), header.index("label")
    entries, bad = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(image_col, label_col):
            bad.append(BadCase(f"{info}:{line}", f"row has {len(row)} columns, expected {len(header)}"))
            continue
        name, label = row[image_col].strip(), row[label_col].strip().lower()
        if label not in THREE_CLASSES:
            expected = "expected Benign, Malignant or Normal"
            bad.append(BadCase(f"{info}:{line}", f"unknown label {row[label_col]!r} for {name} ({expected})"))
            continue
        entries.append((line, name, label))
    if not entries and not bad:
        raise DataError(f"{info}: no rows")
    return entries, bad


def scan_bus_uclm(src: Path, patients: bool = True) -> Scan:
    """The cases listed in INFO.csv, and every file or row that does not fit the layout.

    With ``patients`` each case names its patient, the part of the file name before the first ``_``
    (``ALWI_000.png``: ``ALWI``): consecutive frames of one patient are near-duplicates, so folds keep
    a patient's images together.
    """
    if not src.is_dir():
        raise DataError(f"{src}: BUS-UCLM folder does not exist")
    images_dir, masks_dir = src / "images", src / "masks"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder does not exist (BUS-UCLM has INFO.csv, images/ and masks/)")
    image_files = [p for p in sorted(images_dir.iterdir()) if not is_hidden(p.name)]
    if not image_files:
        raise DataError(f"{images_dir}: empty folder")
    entries, bad = _read_info(src / "INFO.csv")
    # INFO.csv may name an image with or without its suffix
    by_stem = {p.stem: p.name for p in image_files}
    entries = [(line, name if Path(name).suffix else by_stem.get(name, name), label) for line, name, label in entries]
    listed = {name for _, name, _ in entries}
    cases = []
    for line, name, label in entries:
        image, mask = images_dir / name, masks_dir / name
        if not image.is_file():
            bad.append(BadCase(str(image), f"listed in INFO.csv (line {line}) but missing"))
        elif not mask.is_file():
            bad.append(BadCase(str(image), f"missing mask (expected {mask})"))
        else:
            stem = Path(name).stem
            patient = stem.split("_")[0] if patients else None  # <patient code>_<frame number>
            cases.append(CaseSource(stem, image, (mask,), label, f"images/{name}", patient))
    for path in image_files:
        if not is_image_name(path.name):
            bad.append(BadCase(str(path), "not an image file"))
        elif path.name not in listed:
            bad.append(BadCase(str(path), "image not listed in INFO.csv"))
    for path in sorted(masks_dir.iterdir()):
        if not is_hidden(path.name) and path.name not in listed:
            bad.append(BadCase(str(path), "mask of no image listed in INFO.csv"))
    return Scan(cases, bad, [src])


def mask_colour_class(colours: np.ndarray) -> str:
    """normal (no lesion pixel), benign (mostly green) or malignant (mostly red) from an RGB mask."""
    lesion = colours.any(axis=-1)
    if not lesion.any():
        return "normal"
    red, green = colours[..., 0].astype(int), colours[..., 1].astype(int)
    greens, reds = int((lesion & (green > red)).sum()), int((lesion & (red > green)).sum())
    if greens == reds:
        raise DataError(
            f"lesion pixels are neither mostly green (benign) nor mostly red (malignant): {greens} green, {reds} red"
        )
    return "benign" if greens > reds else "malignant"


def load_bus_uclm_case(case: CaseSource) -> LoadedCase:
    """Grayscale image, merged green+red mask; class checked against the mask colour; image resized to its mask."""
    mask_path = case.masks[0]
    colours = read_mask_rgb(mask_path)
    try:
        colour_class = mask_colour_class(colours)
    except DataError as e:
        raise DataError(f"{mask_path}: {e}") from e
    if colour_class != case.class_name:
        raise DataError(f"{mask_path}: the mask says {colour_class} but INFO.csv labels the image {case.class_name}")
    image = read_gray(case.image)
    height, width = colours.shape[:2]
    note = None
    if image.shape != (height, width):
        note = f"image {image.shape[1]}x{image.shape[0]} resized to its mask's {width}x{height} (bicubic)"
        image = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))
    return LoadedCase(image, colours.any(axis=-1), case.class_name, note)


def prepare_bus_uclm(
    src: str,
    out: str,
    dedup: str = "none",
    folds: int = 5,
    seed: int = 0,
    skip_bad: bool = False,
    cache_size: int | None = None,
    patients: bool = True,
) -> dict[str, Any]:
    """Prepares BUS-UCLM from ``src`` (INFO.csv, images/, masks/) into ``out``; returns the summary.

    ``patients=False`` splits image by image (only duplicates grouped), as papers that ignore patients do.
    """
    options = dict(dedup=dedup, folds=folds, seed=seed, skip_bad=skip_bad, cache_size=cache_size)
    return prepare(
        "BUS-UCLM",
        scan_bus_uclm(Path(src), patients),
        load_bus_uclm_case,
        out,
        tool=f"{__name__}.prepare_bus_uclm",
        args=dict(src=src, out=out, patients=patients, **options),
        **options,
    )
