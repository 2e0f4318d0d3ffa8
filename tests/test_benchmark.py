"""scripts/benchmark.py runs end to end on the CPU in a small configuration and writes its JSON.

A benchmark, not a timed test: the figures depend on the machine; only their presence and sanity
(positive rates, speed-ups that are the ratios of the rates, outputs equal to eager) are checked.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_script

KEYS = [
    "train_img_s", "baseline_train_img_s", "train_speedup", "epoch_s", "protocol_min", "infer_latency_ms_bs1",
    "baseline_infer_latency_ms_bs1", "infer_speedup", "infer_img_s_bs32", "data_img_s", "peak_mem_mb",
    "device", "torch", "monai", "cuda",
]  # fmt: skip


@pytest.mark.slow
def test_benchmark_cpu_small_configuration_writes_json(demo_dir, tmp_path):
    out = tmp_path / "bench.json"
    proc = run_script(
        "benchmark.py",
        "--device",
        "cpu",
        "--data",
        str(demo_dir),
        "--out",
        str(out),
        "--iterations",
        "2",
        "--repeats",
        "1",
        "--infer_repeats",
        "2",
        "--spatial_size",
        "[64,64]",
        "--num_workers",
        "0",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| training images/s |" in proc.stdout
    result = json.loads(out.read_text())
    assert set(KEYS) <= set(result)
    for key in ("train_img_s", "baseline_train_img_s", "infer_latency_ms_bs1", "infer_img_s_bs32", "data_img_s"):
        assert result[key] > 0
    assert result["train_speedup"] == pytest.approx(result["train_img_s"] / result["baseline_train_img_s"])
    assert result["infer_speedup"] == pytest.approx(
        result["baseline_infer_latency_ms_bs1"] / result["infer_latency_ms_bs1"]
    )
    assert result["protocol_min"] == pytest.approx(5 * 800 * result["epoch_s"] / 60)
    assert result["device"] == "cpu" and result["cuda"] is None
    assert result["infer_max_abs_diff"] <= 1e-4
