"""House rules that a reader of the project sees: papers called by method and authors, never by file number;
configs short, with every top-level key documented in the README."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import CONFIGS, REPO

# the numbers of the team's paper files (a word "paper" and a three-digit number) mean nothing to a reader
PAPER_NUMBER = re.compile(r"paper[ -]?00\d", re.IGNORECASE)


def test_papers_are_named_by_method_not_by_number():
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.json", "*.md", "*.yml", "*.toml", "*.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = []
    for name in files:
        for number, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), start=1):
            if PAPER_NUMBER.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def _readme_keys() -> set[str]:
    """The keys named in the first column of the README's "Keys to override" table."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Keys to override", 1)[1].split("\n### ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`([^`]+)`", row)}


@pytest.mark.parametrize("config", ["train.json", "evaluate.json", "inference.json"])
def test_every_top_level_key_is_documented(config):
    # "+key" extends a list of the config merged before; it is no key of its own
    keys = {k for k in json.loads((CONFIGS / config).read_text()) if "#" not in k and not k.startswith(("_", "+"))}
    undocumented = sorted(keys - _readme_keys())
    assert not undocumented, f"{config}: add these keys to the README's 'Keys to override' table: {undocumented}"


def test_training_config_reads_like_a_model_zoo_bundle():
    """About the size of the Model Zoo's training configs: at most 250 lines and 15 Python expressions."""
    text = (CONFIGS / "train.json").read_text()
    assert text.count("\n") <= 250
    assert text.count('"$') <= 15
    assert "cuda.is_available" not in text  # device-dependent settings come from gpu_profile
