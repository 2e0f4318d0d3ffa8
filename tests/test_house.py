"""House rules that a reader of the project sees: papers called by method and authors, never by file number;
configs short, with every top-level key documented in the README; no test that fails on a busy machine."""

from __future__ import annotations

import ast
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


def _measures_time(node: ast.AST) -> bool:
    """An expression that reads a clock or a measured duration (``time.perf_counter()``, ``summary["seconds"]``)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in ("perf_counter", "process_time", "time"):
            return True
        if isinstance(sub, ast.Constant) and sub.value in ("seconds", "elapsed_s"):
            return True
    return False


def test_no_test_asserts_a_duration_unless_it_is_a_benchmark():
    """A time limit fails on a loaded machine (a training beside the suite) for reasons that are not bugs: it is
    marked ``benchmark`` and runs only with ``--benchmark``. Deadlines that stop a wait for a hung process
    (``time.monotonic() < deadline``) are not limits on speed and are allowed."""
    offenders = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef) or not function.name.startswith("test_"):
                continue
            marks = {ast.unparse(d) for d in function.decorator_list}
            if "pytest.mark.benchmark" in marks:
                continue
            if any(isinstance(n, ast.Assert) and _measures_time(n.test) for n in ast.walk(function)):
                offenders.append(f"{path.relative_to(REPO)}::{function.name}")
    assert not offenders, offenders
