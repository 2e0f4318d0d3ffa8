"""Prints pip constraints (``name==version``) for the versions bundle/configs/metadata.json says the bundle was tested with.

CI installs with them (``pip install -c``), so the versions in the metadata are the ones the tests ran
on, and tests/test_metadata.py checks that the installed versions are those. The metadata's versions
are chosen to install on every Python the Model Zoo tests (3.10 and 3.11); how they were checked is in
docs/model_zoo.md. Standard library only: it runs before anything is installed.
"""

import json
import pathlib

FIELDS = {"monai_version": "monai", "pytorch_version": "torch", "numpy_version": "numpy"}

metadata = json.loads(
    (pathlib.Path(__file__).resolve().parents[1] / "bundle" / "configs" / "metadata.json").read_text()
)
pins = {package: metadata[field] for field, package in FIELDS.items()} | metadata["required_packages_version"]
print("\n".join(f"{name}=={version}" for name, version in pins.items()))
