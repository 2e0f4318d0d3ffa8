"""Inference inputs: a folder of images, or one split of a datalist."""

from __future__ import annotations

import os
from pathlib import Path

from custom.data.datalist import load_datalist
from custom.data.io import open_image
from custom.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def image_records(input_dir: str | None = None, datalist: str | None = None, split: str = "test") -> list[dict]:
    """Records ``{"image": path}`` for inference.

    ``input_dir`` wins when given: every PNG/JPEG directly inside it, sorted by name, except
    files ending in ``_mask`` (BUSI stores masks next to images). Otherwise ``split`` of ``datalist``.
    Every image is decoded once here, so an unreadable file stops the run with a
    :class:`custom.data.DataError` naming it, before MONAI's loader fails on it mid-run.
    """
    if input_dir:
        if not os.path.isdir(input_dir):
            raise InputError(f"input_dir {input_dir!r} is not a folder; pass --input_dir <folder of PNG/JPG images>.")
        names = sorted(
            n for n in os.listdir(input_dir)
            if n.lower().endswith(IMAGE_EXTENSIONS) and "_mask" not in os.path.splitext(n)[0]
        )
        if not names:
            raise InputError(f"input_dir {input_dir!r} contains no PNG or JPEG image.")
        for n in names:
            open_image(Path(input_dir, n))
        return [{"image": os.path.join(input_dir, n)} for n in names]
    if not datalist:
        raise InputError("give --input_dir <folder of images> or --datalist <datalist.json>.")
    records = load_datalist(datalist, split, labels=False)
    return [{"image": r["image"], **({"id": r["id"]} if "id" in r else {})} for r in records]
