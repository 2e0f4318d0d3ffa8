"""House rules that a reader of the project sees: papers called by method and authors, never by file number;
configs short, with every top-level key documented in the README; no test that fails on a busy machine; scripts
that are shims over custom/workflows, one version number, one logger name, no handler named by its list index."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import CONFIGS, REPO, entry_points

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


# ---------------------------------------------------------------- one rule each for commands, versions, loggers, saver

SHIM_LINES = 25


def test_every_script_is_a_shim_over_one_workflow_function_declared_as_a_console_entry_point():
    """``scripts/<name>.py`` imports one function of ``custom.workflows`` and calls it, in at most 25 lines; the
    logic is in the module, and ``pyproject.toml`` declares the same function as a console entry point."""
    targets = set(entry_points().values())
    shims = set()
    for path in sorted((REPO / "scripts").glob("*.py")):
        text = path.read_text()
        assert (
            text.count("\n") <= SHIM_LINES
        ), f"{path.name}: {text.count(chr(10))} lines; move its logic to custom/workflows"
        tree = ast.parse(text)
        imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert len(imports) == 1 and isinstance(imports[0], ast.ImportFrom), f"{path.name}: one import, of its function"
        module, (alias,) = imports[0].module, imports[0].names
        assert module.startswith("custom.workflows."), f"{path.name}: imports from {module}, not custom.workflows"
        (main_block,) = [n for n in tree.body if isinstance(n, ast.If)]
        assert ast.unparse(main_block) == f"if __name__ == '__main__':\n    {alias.name}()", path.name
        assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Assign))], path.name
        assert f"{module}:{alias.name}" in targets, f"{path.name}: {module}:{alias.name} is no [project.scripts] entry"
        shims.add(f"{module}:{alias.name}")
    assert shims == targets, f"entry points without a script: {sorted(targets - shims)}"


def test_the_bundle_has_one_version_number():
    """``version`` of metadata.json is the one source: ``custom.__version__`` reads it, and pip reads that
    (``dynamic = ["version"]``); setuptools in a fresh interpreter resolves the package to the same version."""
    import tomllib

    import custom

    version = json.loads((CONFIGS / "metadata.json").read_text())["version"]
    assert custom.__version__ == version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "custom.__version__"}
    code = "from setuptools.config.pyprojecttoml import read_configuration\n"
    code += "print(read_configuration('pyproject.toml')['project']['version'])"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the package found from pyproject alone
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], cwd=REPO, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0 and proc.stdout.split()[-1] == version, proc.stderr[-2000:]


LOGGER = "nunet"


def test_the_project_logs_under_one_logger_name():
    """Every module of ``custom/`` logs to ``logging.getLogger("nunet")``, which logging.conf's root handler prints
    (the cross-validation console keeps exactly the `` - nunet - `` lines); naming another library's logger to
    quiet it (``monai.``) is the one exception."""
    offenders = []
    for path in sorted((REPO / "custom").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("getLogger"):
                name = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
                if name != LOGGER and not (isinstance(name, str) and name.startswith("monai.")):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, offenders
    conf = (CONFIGS / "logging.conf").read_text()
    assert "keys=root\n" in conf and "[logger_root]" in conf  # configured once, at the root the name propagates to


def test_no_config_hands_a_handler_over_by_its_list_index():
    """``@validate#handlers#2`` named the best-model saver by its place in a list: a handler inserted before it
    would have handed the training another object. Objects shared between handler lists are top-level items."""
    found = [
        f"{path.relative_to(REPO)}: {match}"
        for path in sorted(CONFIGS.rglob("*.json"))
        for match in re.findall(r"handlers#\d+", path.read_text())
    ]
    assert not found, found
