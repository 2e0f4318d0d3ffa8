"""The prepared GPU check (scripts/gpu_check.py) in its CPU dry mode, so that it cannot rot between GPU sessions."""

from __future__ import annotations

import json

import pytest
from conftest import run_script


@pytest.mark.slow
def test_gpu_check_dry_run_writes_every_measurement(tmp_path, bundle_runs_in_process):
    proc = run_script("gpu_check.py", "--dry", "True", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["device"] == "cpu" and result["dry"] is True
    assert result["benchmark"]["train_img_s"] > 0 and result["benchmark"]["infer_speedup"] > 0
    for name in ("fast", "fp32"):
        assert len(result[name]["val_dice_all"]) == 1 and result[name]["wall_s"] > 0
    assert result["fast"]["settings"]["amp"] is True and result["fp32"]["settings"]["amp"] is False
    assert result["fast"]["settings"]["compile"] is True  # MONAI's compiled trainer, TorchDynamo's eager backend
    assert result["speedup"] == pytest.approx(result["fp32"]["wall_s"] / result["fast"]["wall_s"], rel=1e-2)
    assert "short training with the speed switches" in proc.stdout


def test_gpu_check_needs_the_256_cache(tmp_path):
    from custom.errors import InputError
    from custom.workflows.gpu_check import gpu_check

    with pytest.raises(InputError, match=r"cache_256\.npz: missing; prepare the data with --cache-size 256"):
        gpu_check(str(tmp_path / "out"), data=str(tmp_path))
