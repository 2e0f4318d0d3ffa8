"""MONAI Label end to end: the real ``monailabel start_server`` serving the bundle app, driven over HTTP."""

from __future__ import annotations

import email
import email.policy
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIGS, REPO
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from PIL import Image

from custom.monailabel import create_app, server_command, start_server

NAME = "nunet_breast_ultrasound"
# CPU-sized bundle for the app; every other setting is the bundle's own
OVERRIDES = {"spatial_size": [64, 64], "batch_size": 2, "num_workers": 0}


def _studies(demo_dir: Path, root: Path, n_lesion: int = 5, n_normal: int = 3) -> Path:
    """A MONAI Label local datastore: PNG images in ``root``, their masks in ``root/labels/final`` (same names)."""
    records = json.loads((demo_dir / "datalist.json").read_text())["all"]
    chosen = [r for r in records if r["lesion"]][:n_lesion] + [r for r in records if not r["lesion"]][:n_normal]
    (root / "labels" / "final").mkdir(parents=True)
    for r in chosen:
        shutil.copy(demo_dir / r["image"], root / f"{r['id']}.png")
        shutil.copy(demo_dir / r["label"], root / "labels" / "final" / f"{r['id']}.png")
    return root


def _full_lesion_weights(path: Path) -> Path:
    """N-Unet weights that call every image "lesion" with an all-lesion mask, so the server's answer is known."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    state = parser.get_parsed_content("network_def").state_dict()
    for key in ("segmentation_head.weight", "classification_head.fc2.weight", "classification_head.fc2.bias"):
        state[key].zero_()
    state["segmentation_head.bias"].fill_(10.0)
    state["classification_head.fc2.bias"][1] = 10.0
    torch.save(state, path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: bytes | None = None, method: str = "GET", timeout: float = 600) -> tuple[bytes, str]:
    headers = {"Content-Type": "application/json"} if body else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read(), response.headers.get("Content-Type", "")


def _wait_for_info(base: str, server: subprocess.Popen, log: Path, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"monailabel exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            return json.loads(_request(f"{base}/info/", timeout=5)[0])
        except OSError:  # not listening yet
            time.sleep(2)
    pytest.fail(f"no /info/ after {timeout} s:\n{log.read_text()[-4000:]}")


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str, bytes]]:
    """``{field name: (content type, bytes)}`` of a multipart/form-data response."""
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP)
    return {
        part.get_param("name", header="content-disposition"): (part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_parts()
    }


def _stop(server: subprocess.Popen) -> None:
    """Stops the server and its training subprocesses (its own process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_app_layout_has_the_bundle_its_package_weights_and_overrides(tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save({}, weights)
    bundle = create_app(tmp_path / "app", "mine", model=weights, overrides={"spatial_size": [64, 64], "batch_size": 2})
    assert bundle == tmp_path / "app" / "model" / "mine"
    copied = ["configs/inference.json", "configs/monailabel_infer.json", "configs/metadata.json", "LICENSE"]
    copied += ["docs/README.md", "custom/networks/nunet.py", "models/model.pt"]
    assert [path for path in copied if not (bundle / path).is_file()] == []
    assert (tmp_path / "app" / "main.py").read_text() == (REPO / "custom" / "resources" / "monailabel_main.py").read_text()
    assert not list(bundle.rglob("__pycache__"))
    infer = json.loads((bundle / "configs" / "inference.json").read_text())
    train = json.loads((bundle / "configs" / "train.json").read_text())
    assert infer["spatial_size"] == train["spatial_size"] == [64, 64]
    assert train["batch_size"] == 2 and "batch_size" not in infer  # only where the config has the key
    with pytest.raises(FileExistsError):
        create_app(tmp_path / "app", "mine")
    with pytest.raises(KeyError, match="spatial_sise"):
        create_app(tmp_path / "app", "mine", overrides={"spatial_sise": [64, 64]}, overwrite=True)


def test_monailabel_override_ends_postprocessing_with_the_2d_uint8_mask(tmp_path):
    """inference.json + monailabel_infer.json, as the app reads them: ``pred`` becomes the (W, H) 0/1 mask."""
    image = tmp_path / "case.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70), dtype=np.uint8)).save(image)
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "inference.json"), str(CONFIGS / "monailabel_infer.json")])
    parser["spatial_size"] = [32, 32]
    data = parser.get_parsed_content("preprocessing")({"image": str(image)})
    # a network fed a MetaTensor returns MetaTensors, which Invertd needs
    data["pred"] = {"seg": MetaTensor(torch.full((1, 32, 32), 10.0)), "cls": MetaTensor(torch.tensor([-10.0, 10.0]))}
    out = parser.get_parsed_content("postprocessing")(data)
    assert tuple(out["pred"].shape) == Image.open(image).size  # MONAI's PNG arrays are (W, H)
    assert out["pred"].dtype == torch.uint8 and bool((out["pred"] == 1).all())
    assert out["result"]["predicted_class"] == "lesion"


@pytest.mark.slow
@pytest.mark.skipif(find_spec("monailabel") is None, reason="monailabel is not installed (bundle/docs/README.md: MONAI Label)")
def test_monailabel_server_infers_and_trains_the_bundle(demo_dir, tmp_path):
    studies = _studies(demo_dir, tmp_path / "studies")
    app = tmp_path / "app"
    bundle = create_app(app, NAME, model=_full_lesion_weights(tmp_path / "model.pt"), overrides=OVERRIDES)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        command = server_command(app, studies, port=port, models=NAME)
        server = start_server(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        info = _wait_for_info(base, server, log)
        assert info["models"][NAME]["labels"] == {"lesion": 1}
        assert info["models"][NAME]["dimension"] == 2
        assert NAME in info["trainers"]

        image_id = "benign_001"
        body, content_type = _request(f"{base}/infer/{NAME}?image={image_id}&output=all", body=b"", method="POST")
        parts = _multipart(body, content_type)
        result = json.loads(parts["params"][1])
        assert parts["image"][0] == "image/png"
        mask = np.asarray(Image.open(io.BytesIO(parts["image"][1])))
        assert mask.shape == np.asarray(Image.open(studies / f"{image_id}.png")).shape[:2]
        assert mask.dtype == np.uint8 and np.all(mask == 1)  # label value 1 = lesion everywhere, as the weights say
        assert set(result["class_probabilities"]) == {"normal", "lesion"}
        assert sum(result["class_probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert result["predicted_class"] == "lesion"
        assert result["csb"] == {"mode": "hard", "scale": 1.0}
        assert result["label_names"] == {"lesion": 1}

        # what a viewer sends: the trainer's options from /info/ (first choice of each list), edited
        options = {k: v[0] if isinstance(v, list) else v for k, v in info["trainers"][NAME]["config"].items()}
        params = {**options, "max_epochs": 1, "val_split": 0.25, "multi_gpu": False}
        assert params["run_id"] == ""
        _request(f"{base}/train/{NAME}", body=json.dumps(params).encode(), method="POST")
        deadline = time.monotonic() + 900
        while (task := json.loads(_request(f"{base}/train/")[0]))["status"] in ("SUBMITTED", "RUNNING"):
            assert time.monotonic() < deadline, "training did not finish in 900 s"
            time.sleep(5)
        assert task["status"] == "DONE", "\n".join(task.get("details", []))
        log = [json.loads(line) for line in (bundle / "models" / "train_log.jsonl").read_text().splitlines()]
        assert [record["epoch"] for record in log] == [1]  # one epoch, trained once
        assert log[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # the cosine is as long as max_epochs: it ended
        assert (bundle / "models" / "model.pt").stat().st_mtime > (tmp_path / "model.pt").stat().st_mtime
    finally:
        _stop(server)
