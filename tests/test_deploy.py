"""ONNX export and the ONNX Runtime CPU path: same outputs as PyTorch, any batch and input size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, run_script

from custom.deploy import OnnxRuntimeNetwork, accelerate
from custom.networks import get_network

pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4  # on logits, as the issue asks of any faster inference path


def small_nunet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_network("nunet", features=(8, 16, 32, 64, 128)).eval()


def test_onnx_runtime_network_matches_pytorch_on_any_batch_and_size():
    network = small_nunet()
    fast = OnnxRuntimeNetwork(small_nunet(seed=1)).eval()
    fast.load_state_dict(network.state_dict())  # transparent: the checkpoint keys of the network itself
    assert list(fast.state_dict()) == list(network.state_dict())
    for shape in [(1, 3, 64, 64), (3, 3, 32, 96)]:  # the session is built once, from the first input
        x = torch.rand(*shape)
        with torch.no_grad():
            reference = network(x)
        out = fast(x)
        assert set(out) == {"seg", "cls"}
        for task in out:
            assert out[task].shape == reference[task].shape
            assert (out[task] - reference[task]).abs().max() <= TOLERANCE


def test_loading_new_weights_rebuilds_the_session():
    fast = OnnxRuntimeNetwork(small_nunet(seed=0)).eval()
    x = torch.rand(1, 3, 32, 32)
    before = fast(x)["cls"]
    other = small_nunet(seed=5)
    fast.load_state_dict(other.state_dict())
    with torch.no_grad():
        expected = other(x)["cls"]
    after = fast(x)["cls"]
    assert (after - expected).abs().max() <= TOLERANCE
    assert (after - before).abs().max() > TOLERANCE


def test_accelerate_uses_onnx_runtime_only_on_the_cpu_when_asked():
    network = small_nunet()
    assert isinstance(accelerate(network, "cpu"), OnnxRuntimeNetwork)
    assert accelerate(network, "cpu", cpu_runtime="torch") is network
    assert accelerate(network, "cuda:0") is network
    with pytest.raises(ValueError, match="cpu_runtime"):
        accelerate(network, "cpu", cpu_runtime="tensorrt")


def test_export_onnx_script_checks_dynamic_axes_against_pytorch(tmp_path):
    ckpt = tmp_path / "model.pt"
    torch.save(small_nunet().state_dict(), ckpt)
    out = tmp_path / "model.onnx"
    cmd = [sys.executable, "scripts/export_onnx.py", "--ckpt", str(ckpt), "--out", str(out)]
    cmd += ["--spatial_size", "[64,64]", "--network_def#features", "[8,16,32,64,128]"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert out.is_file() and report["tasks"] == ["seg", "cls"]
    assert report["check_input"] == [2, 3, 32, 64]  # not the export example's batch or size
    assert max(report["max_abs_diff"].values()) <= TOLERANCE


def test_export_onnx_of_the_released_model_with_no_option_but_the_files(tmp_path):
    """The README's command: the input size comes from the released model's card through inference.json."""
    out = tmp_path / "model.onnx"
    proc = run_script("export_onnx.py", "--ckpt", str(REPO / "bundle" / "models" / "model.pt"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    card = json.loads((REPO / "bundle" / "models" / "model.json").read_text())
    height, width = card["spatial_size"]
    assert report["check_input"] == [2, 3, height // 2, width] and out.is_file()
    assert max(report["max_abs_diff"].values()) <= TOLERANCE


def test_export_onnx_script_names_a_missing_checkpoint(tmp_path):
    proc = run_script("export_onnx.py", "--ckpt", str(tmp_path / "none.pt"), "--out", str(tmp_path / "m.onnx"))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "none.pt" in proc.stderr
