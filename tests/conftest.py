"""Shared fixtures: a tiny prepared dataset and helpers to run the bundle the way a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N: N workers share the cores, so each (and every bundle run it starts) takes one
    # thread; N workers of N threads each would oversubscribe the cores N times over
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def run_bundle(*args: str, cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run ...`` in a subprocess, as the README tells users to run it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"bundle run failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The synthetic demo dataset in BUSI layout, prepared into folds (generated once per session)."""
    from custom.data import ensure_demo_dataset

    return Path(ensure_demo_dataset(str(tmp_path_factory.mktemp("demo"))))
