"""Shared fixtures: a tiny prepared dataset and helpers to run the bundle the way a user does."""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"
# a training run as small as the wiring checks need: 32x32 inputs, batches of 4, no worker processes
TINY_RUN = ["--spatial_size", "[32,32]", "--batch_size", "4", "--num_workers", "0"]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N: N workers share the cores, so each (and every bundle run it starts) takes one
    # thread; N workers of N threads each would oversubscribe the cores N times over
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_addoption(parser):
    parser.addoption(
        "--benchmark",
        action="store_true",
        help="also run the wall-clock checks (@pytest.mark.benchmark), on a quiet machine (docs/benchmarks.md)",
    )


def pytest_collection_modifyitems(config, items):
    """Wall-clock limits are skipped unless ``--benchmark`` is given: on a busy machine (a training beside the
    suite, two cores) they fail for reasons that are not bugs, and a suite that fails so teaches to ignore it."""
    if config.getoption("--benchmark"):
        return
    skip = pytest.mark.skip(reason="a wall-clock check: run with --benchmark on a quiet machine")
    for item in items:
        if item.get_closest_marker("benchmark"):
            item.add_marker(skip)


# where a test that forgets its tmp_path writes: a relative path lands in the repository (pytest runs there),
# a bundle run without --output_dir in bundle/models (TensorBoard logs, checkpoints)
WATCHED = (REPO, REPO / "bundle", REPO / "bundle" / "models")
CACHES = {".pytest_cache", "__pycache__"}


@pytest.fixture(autouse=True)
def nothing_written_into_the_work_tree():
    """Fails the test after which a new file or folder appears where tests must not write (they write to tmp_path)."""
    before = {folder: set(os.listdir(folder)) for folder in WATCHED}
    yield
    new = [folder / name for folder in WATCHED for name in set(os.listdir(folder)) - before[folder] - CACHES]
    assert not new, f"the test wrote into the work tree (use tmp_path): {[str(p.relative_to(REPO)) for p in new]}"


@pytest.fixture(autouse=True, scope="session")
def onnx_cache_in_tmp_path(tmp_path_factory):
    """The ONNX models inference exports (custom.deploy.onnx_cache) go to a folder of the session's tmp_path, not to the
    user's cache; the bundle runs in subprocesses inherit it. A test of the cache itself sets its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NUNET_ONNX_CACHE", str(tmp_path_factory.mktemp("onnx_cache")))
        yield


def run_bundle(
    *args: str, cwd: Path = REPO, check: bool = True, in_process: bool = True
) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run ...`` with ``args``, as the README tells users to run it.

    By default in this process, through MONAI's own command line (``fire`` over ``monai.bundle``): the
    same argument parsing and entry point, the same exit status, and on failure what the process would
    print (the exception goes to ``sys.excepthook``, the one-line hook once a config has installed it),
    without a new interpreter, whose imports alone cost about 10 s. In a subprocess with another ``cwd``
    (an exported bundle imports its own code) or ``in_process=False`` (the process itself is the point).
    """
    if in_process and cwd == REPO:
        proc = _run_bundle_in_process(args)
    else:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-m", "monai.bundle", "run", *args], cwd=cwd, env=env, capture_output=True, text=True
        )
    if check and proc.returncode != 0:
        raise AssertionError(f"bundle run failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _run_bundle_in_process(args: tuple[str, ...]) -> subprocess.CompletedProcess:
    import fire
    import monai.bundle.__main__ as command_line

    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                fire.Fire(command_line, command=["run", *args], name="monai.bundle")
            except SystemExit as e:  # as the interpreter ends: a message goes to stderr with status 1
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
            except Exception as e:  # noqa: BLE001 - what an uncaught exception does to the process
                sys.excepthook(type(e), e, e.__traceback__)
                code = 1
    finally:
        sys.excepthook = sys.__excepthook__  # the configs install the one-line error hook for the process
    return subprocess.CompletedProcess(["monai.bundle", "run", *args], code, stdout.getvalue(), stderr.getvalue())


def _run_command_line(argv: list[str], call) -> subprocess.CompletedProcess:
    """``call()`` with ``sys.argv`` set to ``argv``: its exit status and output, as the process would end."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    saved = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                call()
            except SystemExit as e:
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = saved
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    """``python scripts/<script> args...`` in this process (the script's ``fire`` command line, its exit status
    and output), for tests whose point is what the script does rather than a fresh interpreter."""
    path = str(REPO / "scripts" / script)
    return _run_command_line([path, *args], lambda: runpy.run_path(path, run_name="__main__"))


def entry_points() -> dict[str, str]:
    """The console entry points of ``pyproject.toml`` (``[project.scripts]``): name to ``module:function``."""
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def run_entry_point(name: str, *args: str) -> subprocess.CompletedProcess:
    """The console entry point ``name`` (``nunet-prepare-data``) with ``args``, in this process, as pip's launcher
    calls it: its function without arguments, the command line in ``sys.argv``."""
    import importlib

    module, function = entry_points()[name].split(":")
    return _run_command_line([name, *args], getattr(importlib.import_module(module), function))


@pytest.fixture()
def bundle_runs_in_process(monkeypatch):
    """The bundle runs that cross-validation, the ablation driver and the GPU check start, made in this
    process instead of one interpreter each (about 10 s of imports per run); their output still goes to
    the step's log file and through the caller's line filter. The parallel cross-validation test keeps
    real subprocesses."""
    import custom.workflows.calibrate
    import custom.workflows.crossval
    import custom.workflows.gpu_check
    from custom.errors import InputError

    def run(args: list[str], log_file: Path, on_line) -> None:
        proc = _run_bundle_in_process(tuple(args))
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as log:
            log.write(proc.stdout + proc.stderr)
        for line in (proc.stdout + proc.stderr).splitlines():
            on_line(line)
        if proc.returncode != 0:
            raise InputError(f"'{args[0]}' failed (see {log_file}): {(proc.stdout + proc.stderr).strip()[-300:]}")

    for workflow in (custom.workflows.crossval, custom.workflows.calibrate, custom.workflows.gpu_check):
        monkeypatch.setattr(workflow, "run_bundle", run)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The synthetic demo dataset in BUSI layout, prepared into folds (generated once per session)."""
    from custom.data import ensure_demo_dataset

    return Path(ensure_demo_dataset(str(tmp_path_factory.mktemp("demo"))))
