"""Inference inputs: a folder of images, or one split of a datalist."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from custom.data.datalist import load_datalist
from custom.errors import DataError, InputError
from custom.imageio import (
    decode,
    decode_pixels,
    file_stem,
    is_hidden,
    is_image_file,
    medical_format,
    open_image,
    read_frames,
    with_output_stems,
)

# a mask beside its image, as BUSI stores them: "<stem>_mask.png", "<stem>_mask_1.png"; a name that
# merely contains "_mask" ("breast_mask_study.png") is an image
MASK_NAME = re.compile(r"_mask(_\d+)?$", re.IGNORECASE)

logger = logging.getLogger("nunet")


def image_records(input_dir: str | None = None, datalist: str | None = None, split: str = "test") -> list[dict]:
    """Records ``{"image": path}`` for inference.

    ``input_dir`` wins when given: every image directly inside it (PNG, JPEG, BMP, TIFF, DICOM, NIfTI,
    NRRD, MetaImage: the formats preparation reads; a file without image extension by its content),
    sorted by name, except masks stored beside their images (stems ending in ``_mask`` or
    ``_mask_<n>``, as BUSI's); every other file skipped is named in a warning, never dropped silently.
    A file of several frames (a DICOM cine loop, a stack of slices) gives one record per frame,
    ``{"image": path, "frame": k}``. Otherwise ``split`` of ``datalist``.
    Every image of a folder is decoded once here, before MONAI's loader could fail on it mid-run: a
    file that cannot be read becomes ``{"image": path, "error": <one line naming it>}``, logged as an
    error, so one bad file of a batch is reported (``results.csv``) while the others are inferred;
    :func:`readable_records` keeps the others for the loader. Problems of the folder itself (not a
    folder, no image in it, a broken link) still stop the run.
    """
    if input_dir:
        if not os.path.isdir(input_dir):
            raise InputError(f"input_dir {input_dir!r} is not a folder; pass --input_dir <folder of PNG/JPG images>.")
        entries = sorted(n for n in os.listdir(input_dir) if not is_hidden(n))
        for name in entries:  # an input the user meant to give: named, not skipped as "not an image"
            link = Path(input_dir, name)
            if link.is_symlink() and not link.exists():
                raise InputError(f"{link}: a broken link (its target {link.readlink()} does not exist).")
        files = [n for n in entries if os.path.isfile(os.path.join(input_dir, n))]
        images = [n for n in files if is_image_file(Path(input_dir, n))]
        masks = [n for n in images if MASK_NAME.search(file_stem(n))]
        names = [n for n in images if n not in masks]
        others = [n for n in entries if n not in names and n not in masks]
        if masks:
            logger.warning("input_dir %s: %d masks skipped (%s)", input_dir, len(masks), _some(masks))
        if others:
            logger.warning(
                "input_dir %s: %d entries that are not images skipped (%s)", input_dir, len(others), _some(others)
            )
        if not names:
            raise InputError(
                f"input_dir {input_dir!r} contains no PNG, JPEG, BMP, TIFF, DICOM, NIfTI, NRRD or MetaImage image."
            )
        return with_output_stems([record for n in names for record in _records_or_error(Path(input_dir, n))])
    if not datalist:
        raise InputError("give --input_dir <folder of images> or --datalist <datalist.json>.")
    records = load_datalist(datalist, split, labels=False)
    return with_output_stems([{"image": r["image"], **({"id": r["id"]} if "id" in r else {})} for r in records])


def readable_records(records: list[dict]) -> list[dict]:
    """The records of :func:`image_records` that can be inferred (those without an ``error``)."""
    return [r for r in records if "error" not in r]


def _records_or_error(path: Path) -> list[dict]:
    try:
        return _records(path)
    except DataError as e:
        logger.error("%s", e)
        return [{"image": str(path), "error": str(e)}]


def _records(path: Path) -> list[dict]:
    # decoded here to the pixels (a NaN pixel is found by the decoder), so a bad file is known before the run
    if not medical_format(path):
        decode(open_image(path))
        return [{"image": str(path)}]
    frames = read_frames(path)
    for frame in frames:
        decode_pixels(frame.pixels, str(path))
    return (
        [{"image": str(path)}] if len(frames) == 1 else [{"image": str(path), "frame": k} for k in range(len(frames))]
    )


def _some(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")
