"""A small synthetic dataset in BUSI's layout, so the bundle trains, evaluates and infers out of the box.

``<root>/raw/{benign,malignant,normal}/<class> (<n>).png`` with ``_mask.png`` (and ``_mask_1.png``
for two images with a second lesion): 20 benign, 12 malignant, 10 normal images of 96 to 160 pixels
a side. Each image is layered tissue with depth attenuation under multiplicative Rayleigh speckle;
lesions are hypoechoic (dark), benign ones smooth ellipses with posterior enhancement, malignant
ones irregular, spiculated blobs with a posterior shadow. Like BUSI, most images are 8-bit
grayscale, two are RGB, main masks are 1-bit, normal masks RGB and one extra mask RGBA.

The raw folder is then prepared with the BUSI pipeline (no duplicate search, 5 folds) into
``<root>`` itself. The same seed always gives the same pixels and folds.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from custom.data.busi import prepare_busi
from custom.errors import DataError
from custom.imageio import write_png

COUNTS = {"benign": 20, "malignant": 12, "normal": 10}
SIDES = (96, 160)
RGB_IMAGES = {("benign", 3), ("malignant", 2)}
SECOND_LESION = {("benign", 5), ("benign", 11)}
RGBA_EXTRA_MASK = ("benign", 5)
FOLDS = 5


def _lesion(rng: np.random.Generator, shape: tuple[int, int], malignant: bool, avoid: np.ndarray | None) -> np.ndarray:
    """A lesion mask: an ellipse with a few gentle harmonics (benign) or many strong ones (malignant)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(20):  # a second lesion is placed where it does not touch the first
        radius = rng.uniform(0.08, 0.3) * min(h, w)
        cy, cx = rng.uniform(0.3 * h, 0.7 * h), rng.uniform(radius + 2, w - radius - 2)
        aspect, turn = rng.uniform(0.55, 1.0), rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(turn) + dy * np.sin(turn)) / aspect
        v = -dx * np.sin(turn) + dy * np.cos(turn)
        angle = np.arctan2(v, u)
        harmonics = range(2, 13) if malignant else range(2, 4)
        amplitude = 0.22 if malignant else 0.06
        boundary = np.ones_like(angle)
        for k in harmonics:
            boundary += rng.uniform(0, amplitude) / (k**0.5) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
        mask = np.hypot(u, v) < radius * aspect * boundary
        if avoid is None or not (gaussian_filter(mask.astype(float), 3) > 0.01)[avoid].any():
            return mask
    return np.zeros(shape, dtype=bool)


def _ultrasound(rng: np.random.Generator, shape: tuple[int, int], lesions: list[tuple[np.ndarray, bool]]) -> np.ndarray:
    """Layered tissue x lesion echogenicity x depth attenuation x speckle, as uint8."""
    h, w = shape
    depth = np.linspace(0, 1, h)[:, None]
    texture = gaussian_filter(rng.standard_normal(shape), min(h, w) / 12)
    texture /= np.abs(texture).max() + 1e-9
    tissue = 0.55 + 0.25 * np.sin(2 * np.pi * (depth * rng.uniform(2, 4) + rng.uniform(0, 1)) + 2 * texture)
    tissue[: max(3, h // 25)] = 1.0  # bright skin line
    for mask, malignant in lesions:
        edge = gaussian_filter(mask.astype(float), 0.8 if malignant else 2.0)
        tissue *= 1 - 0.75 * edge  # hypoechoic interior
        columns = mask.any(axis=0)
        below = np.cumsum(mask, axis=0) > 0
        # posterior acoustic shadow (malignant) or enhancement (benign) behind the lesion
        behind = gaussian_filter((below & ~mask & columns).astype(float), 2)
        tissue *= 1 + (-0.4 if malignant else 0.3) * behind
    attenuation = np.exp(-rng.uniform(0.8, 1.6) * depth)
    field = gaussian_filter(rng.standard_normal(shape), 0.7) + 1j * gaussian_filter(rng.standard_normal(shape), 0.7)
    speckle = np.abs(field) / np.abs(field).mean()  # Rayleigh amplitude of a smoothed complex field
    return np.clip(200 * tissue * attenuation * speckle, 0, 255).astype(np.uint8)


def write_raw(raw: Path, seed: int = 0) -> None:
    """Writes the synthetic images and masks in BUSI's layout under ``raw``."""
    for c, (class_name, count) in enumerate(COUNTS.items()):
        folder = raw / class_name
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, count + 1):
            rng = np.random.default_rng([seed, c, n])
            shape = (int(rng.integers(*SIDES, endpoint=True)), int(rng.integers(*SIDES, endpoint=True)))
            malignant = class_name == "malignant"
            masks = []
            if class_name != "normal":
                masks.append(_lesion(rng, shape, malignant, None))
                if (class_name, n) in SECOND_LESION:
                    masks.append(_lesion(rng, shape, malignant, masks[0]))
            pixels = _ultrasound(rng, shape, [(m, malignant) for m in masks])
            stem = f"{class_name} ({n})"
            image = np.repeat(pixels[..., None], 3, axis=-1) if (class_name, n) in RGB_IMAGES else pixels
            write_png(folder / f"{stem}.png", image)
            if not masks:
                # all-zero RGB, as BUSI's normal masks
                write_png(folder / f"{stem}_mask.png", np.zeros((*shape, 3), dtype=np.uint8))
            for k, mask in enumerate(masks):
                name = f"{stem}_mask.png" if k == 0 else f"{stem}_mask_{k}.png"
                if (class_name, n) == RGBA_EXTRA_MASK and k > 0:
                    rgba = np.dstack([mask * 255] * 3 + [np.full(shape, 255)]).astype(np.uint8)
                    write_png(folder / name, rgba)
                else:
                    write_png(folder / name, mask)  # 1-bit, as BUSI's main masks


def make_demo_dataset(out: str, seed: int = 0) -> dict[str, Any]:
    """Writes the raw demo data to ``<out>/raw`` and prepares it into ``<out>``; returns the summary."""
    raw = Path(out) / "raw"
    write_raw(raw, seed)
    return prepare_busi(str(raw), out, dedup="none", folds=FOLDS, seed=seed)


def ensure_demo_dataset(root: str) -> str:
    """``root``, after generating the demo dataset there if it holds none.

    The dataset is generated in a temporary sibling folder and renamed to ``root`` in one step, so
    concurrent callers never see half of it; the loser of a race discards its copy.
    """
    path = Path(root)
    if (path / "datalist.json").is_file():
        return root
    if path.exists() and any(path.iterdir()):
        raise DataError(f"{root}: folder exists but holds no demo dataset (no datalist.json); empty it or use another")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    staging.mkdir()
    try:
        make_demo_dataset(str(staging))
        try:
            os.rename(staging, path)  # replaces root only if it is missing or empty
        except OSError:
            if not (path / "datalist.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
