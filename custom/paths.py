"""The project's default paths, defined once for every application and script.

In the repository the bundle is ``bundle/`` beside ``custom/``; in the Model Zoo archive ``custom/``
sits inside the bundle, beside ``configs/``. Both layouts resolve here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLE_DIR", "CONFIGS_DIR", "INFERENCE_CONFIG", "REPO_ROOT", "TRAIN_CONFIG"]

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = REPO_ROOT / "bundle" if (REPO_ROOT / "bundle" / "configs").is_dir() else REPO_ROOT
CONFIGS_DIR = BUNDLE_DIR / "configs"
TRAIN_CONFIG = str(CONFIGS_DIR / "train.json")
INFERENCE_CONFIG = str(CONFIGS_DIR / "inference.json")
