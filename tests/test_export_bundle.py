"""The Model Zoo archive: its layout, the weights policy, and the extracted bundle used with MONAI's own tools.

The end-to-end tests unzip the archive into an empty folder. What imports the bundle's code runs as
``python -m monai.bundle ...`` from the extracted bundle folder with no ``PYTHONPATH``: ``custom`` then
comes from the archive (the working directory is first on ``sys.path``, ahead of this repository's
editable install). ``download_large_files`` and ``verify_metadata``, which import none of it, are called
in Python, as the Model Zoo's ``ci/verify_bundle.py`` calls them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import CONFIGS, REPO, run_script
from monai.bundle import download_large_files, verify_metadata
from PIL import Image

from custom.networks import get_network
from custom.workflows.packaging import bundle_name, export_bundle

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.(script|interface)` is deprecated")

METADATA = json.loads((CONFIGS / "metadata.json").read_text())
NAME = bundle_name(METADATA)
ARCHIVE = f"{NAME}_v{METADATA['version']}.zip"
SCHEMA = "custom/resources/meta_schema_20240725.json"


def _members(path: str) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


def _large_files(path: str) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        return yaml.safe_load(archive.read(f"{NAME}/large_files.yml"))["large_files"]


def test_bundle_name_is_the_model_zoo_folder_name_of_the_metadata_name():
    assert NAME == "breast_ultrasound_nunet"
    assert bundle_name({"name": "Spleen CT segmentation"}) == "spleen_ct_segmentation"
    with pytest.raises(ValueError, match="name"):
        bundle_name({"name": " - "})


def test_archive_holds_configs_package_docs_license_and_schema(tmp_path):
    with pytest.raises(ValueError, match="--models_dir .*no_models: no such folder"):
        export_bundle(str(tmp_path / "dist"), models_dir=str(tmp_path / "no_models"))
    (tmp_path / "no_models").mkdir()
    path = export_bundle(str(tmp_path / "dist"), models_dir=str(tmp_path / "no_models"))
    assert Path(path).name == ARCHIVE
    members = _members(path)
    configs = {f"{NAME}/configs/{p.relative_to(CONFIGS).as_posix()}" for p in CONFIGS.rglob("*") if p.is_file()}
    package = {
        f"{NAME}/custom/{p.relative_to(REPO / 'custom').as_posix()}"
        for p in (REPO / "custom").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    expected = {
        f"{NAME}/{p}"
        for p in ("LICENSE", "large_files.yml", "docs/README.md", "docs/data_license.txt", SCHEMA)
        + ("tests/test_breast_ultrasound_nunet.py",)
    }
    assert configs | package | expected | {f"{NAME}/models/"} <= members
    assert not [m for m in members if "__pycache__" in m or m.endswith(".pyc") or not m.startswith(f"{NAME}/")]
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read(f"{NAME}/configs/metadata.json"))
    assert metadata["version"] in metadata["changelog"]
    # no weights in models_dir: the template entry (the released model's SHA-256), with no url invented
    released = yaml.safe_load((REPO / "bundle" / "large_files.yml").read_text())["large_files"]
    assert _large_files(path) == released and released[0]["url"] == "" and len(released[0]["hash_val"]) == 64


def test_small_weights_go_into_the_archive_large_ones_into_large_files_yml(tmp_path):
    models = tmp_path / "models"
    (models / "tensorboard").mkdir(parents=True)
    (models / "model.pt").write_bytes(os.urandom(4096))
    for name in ("checkpoint_epoch=3.pt", "train_log.jsonl", "tensorboard/events.out.tfevents.1"):
        (models / name).write_bytes(b"training output")

    small = export_bundle(str(tmp_path / "small"), models_dir=str(models), max_file_mb=1.0)
    assert {m for m in _members(small) if m.startswith(f"{NAME}/models/")} == {
        f"{NAME}/models/",
        f"{NAME}/models/model.pt",
    }
    assert _large_files(small) == []

    large = export_bundle(
        str(tmp_path / "large"), models_dir=str(models), max_file_mb=0.001, weights_url="https://h/r/{file}"
    )
    assert {m for m in _members(large) if m.startswith(f"{NAME}/models/")} == {f"{NAME}/models/"}
    sha256 = hashlib.sha256((models / "model.pt").read_bytes()).hexdigest()
    assert _large_files(large) == [
        {"path": "models/model.pt", "url": "https://h/r/model.pt", "hash_val": sha256, "hash_type": "sha256"}
    ]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> Path:
    """The archive from ``scripts/export_bundle.py``, extracted elsewhere, its weights fetched with ``download_large_files``.

    The weights are an untrained N-Unet state dict (36 MB, over the 25 MB limit, so left out of the
    archive); ``--weights_url`` points at them with a ``file://`` address, so MONAI's downloader
    fetches them offline and checks the SHA-256 written into ``large_files.yml``.
    """
    root = tmp_path_factory.mktemp("zoo")
    weights = root / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(get_network("nunet", in_channels=3, num_classes=2).state_dict(), weights / "model.pt")
    proc = run_script(
        "export_bundle.py",
        "--out",
        str(root / "dist"),
        "--models_dir",
        str(weights),
        "--weights_url",
        f"file://{weights}/{{file}}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with zipfile.ZipFile(root / "dist" / ARCHIVE) as archive:
        archive.extractall(root / "unpacked")
    bundle = root / "unpacked" / NAME
    assert not (bundle / "models" / "model.pt").exists()
    download_large_files(bundle_path=str(bundle))  # called in Python, as the zoo's verify_bundle.py does
    assert (bundle / "models" / "model.pt").read_bytes() == (weights / "model.pt").read_bytes()
    return bundle


def _monai(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m monai.bundle <args>`` run from the extracted bundle, without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args], cwd=bundle, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_extracted_bundle_imports_its_own_custom_package(unpacked):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "import custom; print(custom.__file__)"],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
    )
    assert Path(proc.stdout.strip()) == unpacked / "custom" / "__init__.py"


@pytest.mark.slow
def test_verify_metadata_against_the_shipped_schema(unpacked):
    verify_metadata(
        meta_file=str(unpacked / "configs" / "metadata.json"), filepath=str(unpacked / SCHEMA)
    )  # as verify_bundle.py


@pytest.mark.slow
def test_verify_net_in_out_on_the_csb_gated_segmentation(unpacked):
    """MONAI checks one output tensor, ``outputs#pred``: the call adds the CSB wrapper and that output as overrides."""
    _monai(
        unpacked,
        "verify_net_in_out",
        "csb_network",
        "--meta_file",
        "configs/metadata.json",
        "--config_file",
        "configs/inference.json",
        "--csb_network",
        "{'_target_': 'custom.networks.SegmentationWithCSB', 'network': '@network_def'}",
        "--_meta_#network_data_format#outputs#pred",
        "{'num_channels': 1, 'dtype': 'float32'}",
    )


# The Model Zoo's code-format checks (its runtests.sh --codeformat and .pre-commit-config.yaml, with the
# settings of its setup.cfg and pyproject.toml, October 2024), run on the extracted archive.
ZOO_FORMAT_CHECKS = {
    "black": ["-m", "black", "--check", "--skip-magic-trailing-comma", "--line-length", "120", "."],
    "isort": ["-m", "isort", "--check", "--profile", "black", "--line-length", "120", "."],
    "flake8": [
        "-m", "flake8", "--select", "B,C,E,F,N,P,T4,W,B9", "--max-line-length", "120",
        "--ignore", "E203,E501,E741,W503,W504,C408,N812,B023,B905,B028,B907,C419",
        "--per-file-ignores", "__init__.py:F401 __main__.py:F401", ".",
    ],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("tool", sorted(ZOO_FORMAT_CHECKS))
def test_the_archive_passes_the_model_zoos_python_format_checks(unpacked, tool):
    proc = subprocess.run([sys.executable, *ZOO_FORMAT_CHECKS[tool]], cwd=unpacked, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_the_archive_passes_the_model_zoos_text_hooks(unpacked):
    """pretty-format-json (--no-sort-keys --indent=4), end-of-file-fixer and trailing-whitespace, as the zoo runs them."""
    for path in sorted(
        p for p in unpacked.rglob("*") if p.is_file() and p.suffix in (".json", ".py", ".md", ".yml", ".txt")
    ):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            assert text == json.dumps(json.loads(text), indent=4) + "\n", path
        assert text.endswith("\n") and not text.endswith("\n\n"), path
        assert not [n for n, line in enumerate(text.splitlines(), 1) if line != line.rstrip()], path


@pytest.mark.slow
def test_the_bundles_own_unit_test_passes_in_the_archive(unpacked):
    """tests/test_breast_ultrasound_nunet.py (the zoo's unit-test style): train, evaluate and infer from the archive."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests"],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "OK" in proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_ckpt_export_to_torchscript_reloads_with_the_checkpoint_outputs(unpacked, tmp_path):
    ts = tmp_path / "model.ts"
    _monai(
        unpacked,
        "ckpt_export",
        "network_def",
        "--filepath",
        str(ts),
        "--ckpt_file",
        "models/model.pt",
        "--meta_file",
        "configs/metadata.json",
        "--config_file",
        "configs/inference.json",
    )
    extra = {"metadata.json": "", "inference.json": ""}
    scripted = torch.jit.load(str(ts), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["version"] == METADATA["version"]
    assert json.loads(extra["inference.json"])["network_def"]["name"] == "nunet"
    network = get_network("nunet", in_channels=3, num_classes=2)
    network.load_state_dict(torch.load(unpacked / "models" / "model.pt", weights_only=True))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = network.eval()(x), scripted.eval()(x)
    assert got.keys() == expected.keys() == {"seg", "cls"}
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])


@pytest.mark.slow
def test_inference_on_a_png_writes_a_mask(unpacked, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 80), dtype=np.uint8)).save(images / "case.png")
    out = tmp_path / "pred"
    _monai(
        unpacked, "run", "--config_file", "configs/inference.json", "--input_dir", str(images), "--output_dir", str(out)
    )
    mask = Image.open(out / "case_seg.png")
    assert mask.size == (80, 60)
    assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}
    assert json.loads((out / "case.json").read_text())["predicted_class"] in ("normal", "lesion")
