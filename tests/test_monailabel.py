"""MONAI Label end to end: the real ``monailabel start_server`` serving the bundle app, driven over HTTP."""

from __future__ import annotations

import email
import email.policy
import filecmp
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from conftest import CONFIGS, REPO
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from PIL import Image

from custom.provenance import file_sha256
from custom.workflows.monailabel import APP_MAIN, BUNDLE, create_app, server_command, start_server

NAME = "nunet_breast_ultrasound"
# CPU-sized bundle for the app, with the mirror test-time augmentation the "uncertain" strategy scores
# with (so /infer's lesion probability is the strategy's); every other setting is the bundle's own
OVERRIDES = {"spatial_size": [64, 64], "batch_size": 2, "num_workers": 0, "tta_flips": [[], [0]]}
needs_monailabel = pytest.mark.skipif(
    find_spec("monailabel") is None, reason="monailabel is not installed (bundle/docs/README.md: MONAI Label)"
)


def _studies(
    demo_dir: Path, root: Path, n_lesion: int = 5, n_normal: int = 3, n_unlabelled: int = 3
) -> dict[str, Path]:
    """A MONAI Label local datastore: PNG images in ``root``, their masks in ``root/labels/final`` (same names),
    and ``n_unlabelled`` further images without a mask there; returns the demo masks of those, by image id."""
    records = json.loads((demo_dir / "datalist.json").read_text())["all"]
    chosen = [r for r in records if r["lesion"]][:n_lesion] + [r for r in records if not r["lesion"]][:n_normal]
    # spread over the other records: with _lesion_weights their uncertainty ranking is not their id order
    unlabelled = [r for r in records if r not in chosen][::11][:n_unlabelled]
    (root / "labels" / "final").mkdir(parents=True)
    for r in chosen + unlabelled:
        shutil.copy(demo_dir / r["image"], root / f"{r['id']}.png")
    for r in chosen:
        shutil.copy(demo_dir / r["label"], root / "labels" / "final" / f"{r['id']}.png")
    return {r["id"]: demo_dir / r["label"] for r in unlabelled}


def _lesion_weights(path: Path, images: list[Path]) -> Path:
    """N-Unet weights that call each of ``images`` "lesion", with an all-lesion mask, at a lesion
    probability that differs from image to image: the server's masks and classes are known, and its
    uncertainty ranking is not a tie.

    A new network passes almost nothing of the image to its bottleneck (its eval-mode batch norms, with
    unit running statistics, shrink the signal level by level), so its class would not depend on the
    image; with the batch statistics of ``images`` and their mirrors it does. The lesion bias then gives
    every such view a lesion logit margin of at least 1.
    """
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser["spatial_size"] = OVERRIDES["spatial_size"]
    parser["classifier_input"] = "bottleneck"  # the head of weights without a card, not the released model's
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def")
    preprocessing = parser.get_parsed_content("preprocessing")
    batch = torch.stack([preprocessing({"image": str(image)})["image"].as_tensor() for image in images])
    views = torch.cat([batch, batch.flip(2)])
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # running statistics = the average over the batches seen: this one
    with torch.no_grad():
        network.train()(views)
        logits = network.eval()(views)["cls"]
    state = network.state_dict()
    state["segmentation_head.weight"].zero_()
    state["segmentation_head.bias"].fill_(10.0)
    state["classification_head.fc2.bias"][1] += 1.0 - (logits[:, 1] - logits[:, 0]).min()
    torch.save(state, path)
    return path


def _app_main() -> ModuleType:
    """The app's ``main.py`` (custom/resources/monailabel_main.py) imported as a module."""
    spec = importlib.util.spec_from_file_location("monailabel_app_main", APP_MAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(
    url: str,
    body: bytes | None = None,
    method: str = "GET",
    timeout: float = 600,
    content_type: str = "application/json",
) -> tuple[bytes, str]:
    headers = {"Content-Type": content_type} if body else {}
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


def _put_label(base: str, image_id: str, mask: Path) -> dict:
    """Submits ``mask`` as the final label of ``image_id``, as a viewer's "Submit Label" does."""
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="label"; filename="{image_id}.png"\r\n'
    body = f"{head}Content-Type: image/png\r\n\r\n".encode() + mask.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    url = f"{base}/datastore/label?image={image_id}"
    return json.loads(_request(url, body, "PUT", content_type=f"multipart/form-data; boundary={boundary}")[0])


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str, bytes]]:
    """``{field name: (content type, bytes)}`` of a multipart/form-data response."""
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
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
    assert (tmp_path / "app" / "main.py").read_text() == (
        REPO / "custom" / "resources" / "monailabel_main.py"
    ).read_text()
    assert not list(bundle.rglob("__pycache__"))
    infer = json.loads((bundle / "configs" / "inference.json").read_text())
    train = json.loads((bundle / "configs" / "train.json").read_text())
    assert infer["spatial_size"] == train["spatial_size"] == [64, 64]
    assert train["batch_size"] == 2 and "batch_size" not in infer  # only where the config has the key
    with pytest.raises(FileExistsError):
        create_app(tmp_path / "app", "mine")
    with pytest.raises(KeyError, match="spatial_sise"):
        create_app(tmp_path / "app", "mine", overrides={"spatial_sise": [64, 64]}, overwrite=True)


def test_app_pre_annotates_with_the_released_weights_by_default(tmp_path):
    bundle = create_app(tmp_path / "app")
    assert filecmp.cmp(bundle / "models" / "model.pt", BUNDLE / "models" / "model.pt", shallow=False)
    assert filecmp.cmp(bundle / "models" / "model.json", BUNDLE / "models" / "model.json", shallow=False)  # its card


@pytest.mark.parametrize("weights", ["released", "decoder head"])
def test_the_served_training_config_builds_the_head_of_the_served_weights(tmp_path, weights):
    """MONAI Label's training starts from the served weights (a strict CheckpointLoader): the app's train.json must
    build the classification head their card names, or the first training fails on a shape mismatch."""
    from generated import save_untrained_checkpoint

    from custom.checkpoints import load_model_weights, write_card

    model = None
    if weights == "decoder head":
        model = save_untrained_checkpoint(tmp_path / "decoder.pt", classifier_input="decoder")
        write_card(model, {"network": "nunet", "spatial_size": [32, 32], "classifier_input": "decoder"})
    bundle = create_app(tmp_path / "app", model=model)
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    load_model_weights(parser.get_parsed_content("network_def"), bundle / "models" / "model.pt")
    # an explicit override still wins (and then the weights do not fit: the user asked for another head)
    other = create_app(tmp_path / "other", model=model, overrides={"classifier_input": "bottleneck"}, overwrite=True)
    assert ConfigParser.load_config_file(other / "configs" / "train.json")["classifier_input"] == "bottleneck"


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


def test_the_card_is_rewritten_for_the_weights_a_training_wrote(tmp_path):
    """The served card of the old weights (threshold, size, figures) must not stay beside new weights."""
    from custom.checkpoints import read_card, write_card
    from custom.provenance import file_sha256
    from custom.workflows.monailabel import card_after_training

    weights = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, weights)
    write_card(weights, {"network": "nunet", "spatial_size": [96, 96], "lesion_threshold": 0.3, "note": "released"})
    bundle = create_app(tmp_path / "app", model=weights, overrides={"spatial_size": [64, 64]})
    served = bundle / "models" / "model.pt"
    assert card_after_training(bundle, {"max_epochs": 1})["note"] == "released"  # same weights: card kept
    torch.save({"w": torch.ones(2)}, served)  # what a training writes
    card = card_after_training(bundle, {"max_epochs": 1, "labelled_images": 8})
    assert read_card(served) == card and card["weights"]["sha256"] == file_sha256(served)
    assert card["lesion_threshold"] is None and card["spatial_size"] == [64, 64] and card["network"] == "nunet"
    assert card["trained_with"]["by"] == "MONAI Label" and card["trained_with"]["labelled_images"] == 8
    assert card["trained_with"]["previous_weights"]["sha256"] == file_sha256(weights)


class _Datastore:
    """The datastore calls of the uncertainty strategy, over ``{image id: labelled}``."""

    def __init__(self, labelled: dict[str, bool]) -> None:
        self.labelled = labelled

    def get_unlabeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        return [image for image, done in self.labelled.items() if not done]

    def get_image_uri(self, image: str) -> str:
        return f"/studies/{image}.png"


class _Scorer:
    """Stands in for the scoring infer task: a lesion probability per image file name, and the images scored."""

    def __init__(self, model: Path, lesion_probabilities: dict[str, float]) -> None:
        self.model = model
        self.lesion_probabilities = lesion_probabilities
        self.scored: list[str] = []

    def get_path(self) -> str:
        return str(self.model)

    def __call__(self, request: dict) -> tuple[None, dict]:
        image = Path(request["image"]).stem
        self.scored.append(image)
        return None, {"result": {"lesion_probability": self.lesion_probabilities[image]}}


@needs_monailabel
def test_uncertainty_strategy_serves_the_unlabelled_image_nearest_one_half_and_rescores_new_models(tmp_path):
    main = _app_main()
    assert main.binary_entropy(0.5) == 1.0 and main.binary_entropy(0.0) == main.binary_entropy(1.0) == 0.0
    assert main.binary_entropy(0.2) == pytest.approx(main.binary_entropy(0.8))
    assert main.most_uncertain({"b": 0.3, "a": 0.7, "c": 0.95}) == "a"  # a tie goes to the first id

    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    scorer = _Scorer(model, {"a": 0.97, "b": 0.45, "c": 0.2, "d": 0.5})
    datastore = _Datastore({"a": False, "b": False, "c": False, "d": True})
    strategy = main.UncertaintyStrategy(scorer)
    request = {"strategy": "uncertain"}
    assert strategy(request, datastore) == {
        "id": "b",
        "lesion_probability": 0.45,
        "uncertainty": main.binary_entropy(0.45),
    }
    assert sorted(scorer.scored) == ["a", "b", "c"]  # d, though at 0.5, is labelled: neither scored nor served

    datastore.labelled["b"] = True
    assert strategy(request, datastore)["id"] == "c"
    assert len(scorer.scored) == 3  # scores are kept while the model file is unchanged

    scorer.lesion_probabilities["a"] = 0.55  # a training wrote a new model
    mtime = model.stat().st_mtime_ns + 10**9
    os.utime(model, ns=(mtime, mtime))
    assert strategy(request, datastore)["id"] == "a"
    assert sorted(scorer.scored[3:]) == ["a", "c"]

    datastore.labelled.update(a=True, c=True)
    assert strategy(request, datastore) is None


@pytest.mark.slow
@needs_monailabel
def test_monailabel_server_infers_serves_samples_takes_labels_and_trains_the_bundle(demo_dir, tmp_path):
    studies = tmp_path / "studies"
    masks = _studies(demo_dir, studies)
    app = tmp_path / "app"
    weights = _lesion_weights(tmp_path / "model.pt", sorted(studies.glob("*.png")))
    bundle = create_app(app, NAME, model=weights, overrides=OVERRIDES)
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
        assert list(info["strategies"]) == ["uncertain", "random", "first"]  # viewers preselect the first

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

        # next sample: the unlabelled image whose lesion probability (mirror TTA, as /infer here) is nearest 0.5
        def lesion_probability(image: str) -> float:
            return json.loads(_request(f"{base}/infer/{NAME}?image={image}&output=json", body=b"", method="POST")[0])[
                "lesion_probability"
            ]

        unlabelled = {image: lesion_probability(image) for image in masks}
        assert len(set(unlabelled.values())) == len(unlabelled)  # the weights tell the images apart
        completed = json.loads(_request(f"{base}/datastore/?output=stats")[0])["completed"]
        while unlabelled:
            sample = json.loads(_request(f"{base}/activelearning/uncertain", body=b"{}", method="POST")[0])
            expected = min(sorted(unlabelled), key=lambda image: abs(unlabelled[image] - 0.5))
            assert sample["id"] == expected
            assert sample["lesion_probability"] == pytest.approx(unlabelled.pop(expected), abs=1e-6)
            # the annotator submits the corrected mask: the image counts as labelled, and is not served again
            assert _put_label(base, expected, masks[expected])["label"] == expected
            assert json.loads(_request(f"{base}/datastore/?output=stats")[0])["completed"] == completed + 1
            assert (studies / "labels" / "final" / f"{expected}.png").read_bytes() == masks[expected].read_bytes()
            completed += 1
        assert json.loads(_request(f"{base}/activelearning/uncertain", body=b"{}", method="POST")[0]) == {}

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
        # the served card now describes the new weights (before: the old one stayed, threshold and all)
        card = json.loads((bundle / "models" / "model.json").read_text())
        assert card["weights"]["sha256"] == file_sha256(bundle / "models" / "model.pt")
        assert card["lesion_threshold"] is None and card["trained_with"]["by"] == "MONAI Label"
    finally:
        _stop(server)


def _http_error(url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    """The status and ``detail`` of a POST to ``url`` (with the multipart ``form``) that the server refuses."""
    boundary = "nunet-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in (form or {}).items()
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode() if form else b""
    with pytest.raises(urllib.error.HTTPError) as refused:
        _request(url, body=body, method="POST", content_type=f"multipart/form-data; boundary={boundary}")
    body = refused.value.read().decode()
    try:
        return refused.value.code, json.loads(body).get("detail", "")
    except ValueError:  # a bare "Internal Server Error"
        return refused.value.code, body


@needs_monailabel
@pytest.mark.slow
def test_monailabel_server_keeps_a_nifti_study_in_place_and_answers_bad_requests_with_4xx(tmp_path):
    import nibabel

    studies = tmp_path / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 255, (48, 40), dtype=np.uint8)  # x (columns), y (rows)
    affine = np.array([[0.0, -0.2, 0, 12.5], [0.1, 0.0, 0, -7.0], [0, 0, 1.0, 3.0], [0, 0, 0, 1]])  # turned, placed
    nibabel.save(nibabel.Nifti1Image(pixels, affine), str(studies / "scan.nii.gz"))
    (studies / "broken.png").write_text("not a picture")
    Image.fromarray(pixels.T).save(tmp_path / "plain.png")
    weights = _lesion_weights(tmp_path / "model.pt", [tmp_path / "plain.png"])
    app = tmp_path / "app"
    create_app(app, NAME, model=weights, overrides=OVERRIDES)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        command = server_command(app, studies, port=port, models=NAME) + ["--conf", "skip_trainers", "true"]
        server = start_server(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_info(base, server, log)
        body, _ = _request(f"{base}/infer/{NAME}?image=scan&output=image", body=b"", method="POST")
        (tmp_path / "label.nii.gz").write_bytes(body)
        label = nibabel.load(str(tmp_path / "label.nii.gz"))
        assert label.shape[:2] == pixels.shape and np.all(np.asarray(label.dataobj) == 1)
        np.testing.assert_allclose(label.affine[:2, :2], affine[:2, :2], atol=1e-6)  # spacing and direction
        np.testing.assert_allclose(label.affine[:2, 3], affine[:2, 3], atol=1e-6)  # origin
        refused = {
            "unknown image": _http_error(f"{base}/infer/{NAME}?image=nothing"),
            "unreadable image": _http_error(f"{base}/infer/{NAME}?image=broken"),
            "unknown model": _http_error(f"{base}/infer/no_such_model?image=scan"),
            "malformed params": _http_error(f"{base}/infer/{NAME}?image=scan", form={"params": "{'threshold': 0.5"}),
        }
        assert refused["unknown image"] == (404, "image 'nothing': not in the datastore"), log.read_text()[-3000:]
        status, detail = refused["unreadable image"]
        assert status == 422 and "broken.png" in detail and "not a readable image" in detail, log.read_text()[-3000:]
        status, detail = refused["unknown model"]
        assert status == 400 and "no_such_model" in detail, log.read_text()[-3000:]
        status, detail = refused["malformed params"]
        assert status == 400 and "is not valid JSON" in detail, log.read_text()[-3000:]
    finally:
        _stop(server)
