"""Inputs the tests make for themselves (no binary fixtures): speckle pictures, lesion masks,
image/mask folders, untrained checkpoints, and a bundle run in this process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import CONFIGS

SHAPE = (40, 48)  # height, width of the ordinary generated images


def picture(seed: int = 0, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Speckle-like 8-bit pixels spanning 0..255 (so a min-max rescale maps them the same whatever their depth)."""
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    pixels.flat[:2] = (0, 255)
    return pixels


def lesion(shape: tuple[int, int] = SHAPE) -> np.ndarray:
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    mask[h // 4 : h // 2, w // 4 : w // 2] = True
    return mask


def pair_folders(root: Path) -> tuple[Path, Path]:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    return root / "images", root / "masks"


def write_pair(
    root: Path, stem: str, image: Image.Image | None = None, mask: Image.Image | None = None, ext: str = ".png"
):
    """``images/<stem><ext>`` and ``masks/<stem>.png``: by default an ordinary gray image and a 0/255 mask."""
    images, masks = pair_folders(root)
    (image or Image.fromarray(picture())).save(images / f"{stem}{ext}")
    (mask or Image.fromarray(lesion().astype(np.uint8) * 255)).save(masks / f"{stem}.png")


def bundle_run(run_id: str, config: str, **overrides):
    """``python -m monai.bundle run`` in this process (same entry point, no new interpreter per case)."""
    from monai.bundle import run

    return run(run_id, config_file=str(CONFIGS / config), logging_file=False, **overrides)


def save_untrained_checkpoint(path: Path) -> Path:
    """inference.json's network with its initial weights, saved as training saves ``model.pt`` (no training needed)."""
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    torch.save({"model": parser.get_parsed_content("network_def").state_dict()}, path)
    return path
