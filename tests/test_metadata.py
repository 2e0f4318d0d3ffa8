"""bundle/configs/metadata.json against MONAI's metadata schema, offline (the schema ships in custom/resources)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import jsonschema
import pytest
from conftest import CONFIGS, REPO
from monai.bundle import verify_metadata

SCHEMA = REPO / "custom" / "resources" / "meta_schema_20240725.json"


def _metadata() -> dict:
    return json.loads((CONFIGS / "metadata.json").read_text())


def test_metadata_validates_against_the_2024_schema():
    jsonschema.validate(_metadata(), json.loads(SCHEMA.read_text()))


def test_monai_verify_metadata_passes_offline(tmp_path):
    local = tmp_path / "schema.json"
    shutil.copy(SCHEMA, local)  # verify_metadata downloads unless the file already exists
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(local))


def test_schema_rejects_metadata_without_required_fields():
    broken = _metadata()
    del broken["network_data_format"]
    with pytest.raises(jsonschema.ValidationError, match="network_data_format"):
        jsonschema.validate(broken, json.loads(SCHEMA.read_text()))


def test_segmentation_output_is_listed_first_and_classes_match_the_config():
    outputs = list(_metadata()["network_data_format"]["outputs"].items())
    assert outputs[0][0] == "seg" and outputs[0][1]["num_channels"] == 1
    num_classes = json.loads((CONFIGS / "train.json").read_text())["num_classes"]
    assert dict(outputs)["cls"]["num_channels"] == num_classes


def test_the_metadata_names_the_installed_versions():
    """CI installs the metadata's versions (.ci/constraints.py); a dependency upgraded without the metadata fails here."""
    from importlib.metadata import version

    from packaging.version import Version

    pins = subprocess.run(
        [sys.executable, str(REPO / ".ci" / "constraints.py")], capture_output=True, text=True, check=True
    )
    for line in pins.stdout.split():
        name, pinned = line.split("==")
        installed = Version(version(name)).base_version if name == "torch" else version(name)  # torch: 2.13.0+cpu
        assert Version(installed) == Version(pinned), f"{name}: metadata.json says {pinned}, installed {version(name)}"
