"""ONNX export and the ONNX Runtime CPU path: same outputs as PyTorch, any batch and input size, exported once per
weights file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, run_script

from custom.checkpoints import TrainedModel
from custom.deploy import OnnxRuntimeNetwork, accelerate, inference_network
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


def test_the_onnx_model_is_exported_once_per_weights_file_and_again_when_damaged(tmp_path, monkeypatch):
    """Inference exported the network at the start of every run (5.5 s for N-Unet); now once per weights file, into
    a cache keyed by the file's SHA-256: a second run reads it, changed weights or a damaged file export again."""
    import custom.deploy.onnx_cache

    monkeypatch.setenv("NUNET_ONNX_CACHE", str(tmp_path / "cache"))
    exports = []
    export = custom.deploy.onnx_cache.export_onnx
    monkeypatch.setattr(custom.deploy.onnx_cache, "export_onnx", lambda *a, **k: exports.append(1) or export(*a, **k))
    weights, x = tmp_path / "model.pt", torch.rand(1, 3, 32, 32)

    def run(seed: int) -> dict[str, torch.Tensor]:
        """A new inference run on the weights file: a fresh network with other initial weights, loaded from it."""
        return inference_network(TrainedModel(weights), small_nunet(seed=seed), "cpu")(x)

    def assert_matches(out: dict[str, torch.Tensor], network: torch.nn.Module) -> None:
        with torch.no_grad():
            reference = network(x)
        assert max(float((out[t] - reference[t]).abs().max()) for t in reference) <= TOLERANCE

    first = small_nunet(seed=0)
    torch.save(first.state_dict(), weights)
    assert_matches(run(seed=1), first)
    cached = sorted((tmp_path / "cache").glob("*.onnx"))
    assert len(exports) == 1 and [p.name.split("-")[0] for p in cached] == TrainedModel(weights).sha256
    assert_matches(run(seed=2), first)
    assert len(exports) == 1  # the second run read the cached model
    second = small_nunet(seed=3)
    torch.save(second.state_dict(), weights)  # retrained in place: other weights, another SHA-256
    assert_matches(run(seed=4), second)
    assert len(exports) == 2 and len(list((tmp_path / "cache").glob("*.onnx"))) == 2
    damaged = next(p for p in (tmp_path / "cache").glob("*.onnx") if p not in cached)
    damaged.write_bytes(damaged.read_bytes()[:-1000])  # a truncated copy
    assert_matches(run(seed=5), second)
    assert len(exports) == 3


def test_an_unwritable_onnx_cache_costs_the_export_and_nothing_else(tmp_path, monkeypatch, caplog):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("NUNET_ONNX_CACHE", str(tmp_path / "file" / "cache"))  # a folder under a file
    weights, x = tmp_path / "model.pt", torch.rand(1, 3, 32, 32)
    network = small_nunet(seed=0)
    torch.save(network.state_dict(), weights)
    with caplog.at_level("WARNING", logger="nunet"):
        out = inference_network(TrainedModel(weights), small_nunet(seed=1), "cpu")(x)
    with torch.no_grad():
        assert float((out["cls"] - network(x)["cls"]).abs().max()) <= TOLERANCE
    assert "the ONNX model is exported for this run only" in caplog.text


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
