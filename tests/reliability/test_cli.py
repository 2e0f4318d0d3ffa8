"""The one command line of the scripts (custom/cli.py): problems a user can fix are one line, outputs stay out of inputs."""

from __future__ import annotations

import ast
import errno
import json

import numpy as np
import pytest
from conftest import REPO, entry_points, run_entry_point, run_script
from PIL import Image

from custom.cli import run
from custom.errors import InputError


def test_every_script_runs_through_the_one_command_line():
    """Scripts and console entry points are one command each: the entry point's function hands its command to
    ``custom.cli.run`` (fire, ``--help``, option checks, one-line errors), and no script calls fire itself."""
    import importlib
    import inspect

    for name, target in entry_points().items():
        module, function = target.split(":")
        source = inspect.getsource(getattr(importlib.import_module(module), function))
        assert "run_command(" in source, f"{name}: {target} does not call custom.cli.run"
    for path in sorted((REPO / "scripts").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "fire" not in imported | modules, path.name


SCRIPTS = sorted(path.name for path in (REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--out", "here", "--device", "cpu", "--help"]])
def test_every_script_answers_help_with_its_help_and_nothing_else(script, args, tmp_path, monkeypatch):
    """``--help`` shows the help even after other options and to a command taking ``**overrides`` (``benchmark.py
    --help`` took it as a bundle override and ran the whole benchmark): only fire's help is printed, nothing is
    written and no error is raised."""
    monkeypatch.chdir(tmp_path)
    proc = run_script(script, *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # fire writes the help to stderr when the output is not a terminal
    assert proc.stdout == "" and proc.stderr.startswith("NAME\n") and "SYNOPSIS" in proc.stderr, proc.stdout[:500]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted(entry_points()))
def test_every_console_entry_point_answers_help_with_its_help_and_nothing_else(name, tmp_path, monkeypatch):
    """``nunet-<command> --help`` (pyproject's ``[project.scripts]``) as ``python scripts/<command>.py --help``."""
    monkeypatch.chdir(tmp_path)
    proc = run_entry_point(name, "--out", "here", "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "" and proc.stderr.startswith(f"NAME\n    {name}") and "SYNOPSIS" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_help_of_a_subcommand_is_that_commands_help(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    proc = run_script("prepare_data.py", "busi", "--src", "nowhere", "--help")
    assert proc.returncode == 0 and proc.stderr.startswith("NAME\n    prepare_data.py busi - ")


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (InputError("--epochs 0: expected a positive integer"), "error: --epochs 0: expected a positive integer"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/a.png"), "error: /out/a.png: No space left on device"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/run.json"), "error: /ro/run.json: Read-only file system"),
        (OSError(errno.EACCES, "Permission denied", "/locked"), "error: /locked: Permission denied"),
        (FileExistsError(errno.EEXIST, "File exists", "/out.zip"), "error: /out.zip: File exists"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/a/file/x"), "error: /a/file/x: Not a directory"),
    ],
)
def test_user_errors_and_faults_of_the_machine_are_one_line_with_status_1(monkeypatch, capsys, error, line):
    def command() -> None:
        raise RuntimeError("wrapped, as MONAI and fire wrap errors") from error

    monkeypatch.setattr("sys.argv", ["script"])
    with pytest.raises(SystemExit) as stop:
        run(command)
    assert stop.value.code == 1
    assert capsys.readouterr().err == line + "\n"


def test_bugs_keep_their_traceback(monkeypatch):
    def command() -> None:
        raise KeyError("a bug of ours")

    monkeypatch.setattr("sys.argv", ["script"])
    with pytest.raises(KeyError):
        run(command)


def test_a_mistyped_option_stops_before_the_command_runs(tmp_path, monkeypatch, capsys):
    """fire calls a command with the options it understood and only then complains about the rest: a
    typo used to run the whole command with the defaults first (``--seeds 7`` rewrote the folds with seed 0)."""
    calls = []

    def prepare(out: str, seed: int = 0, skip_bad: bool = False) -> None:
        calls.append((out, seed, skip_bad))

    commands = {"folder": prepare}
    for argv, line in [
        (
            ["folder", "--out", "x", "--seeds", "7"],
            "error: --seeds: not an option of this command; did you mean --seed?",
        ),
        (
            ["folder", "--out=x", "--skip-bads"],
            "error: --skip_bads: not an option of this command; did you mean --skip_bad?",
        ),
    ]:
        monkeypatch.setattr("sys.argv", ["prepare_data.py", *argv])
        with pytest.raises(SystemExit) as stop:
            run(commands)
        assert stop.value.code == 1 and capsys.readouterr().err.startswith(line)
    assert calls == []
    # what fire itself accepts still reaches the command: --name=value, dashes, --noflag, positional values
    monkeypatch.setattr("sys.argv", ["prepare_data.py", "folder", "x", "--seed=7", "--noskip-bad"])
    run(commands)
    assert calls == [("x", 7, False)]


def test_a_reader_that_leaves_early_ends_the_command_without_a_traceback():
    """``prepare_data.py ... | head -1`` ended in a ``BrokenPipeError`` traceback."""
    import subprocess
    import sys

    code = "from custom.cli import run\nrun(lambda: [print('line', i) for i in range(200000)] and None)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()  # what head does after its first line
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 1 and stderr == "", stderr


def test_report_and_calibration_say_what_a_run_folder_lacks(tmp_path):
    missing = run_script("report.py", str(tmp_path / "nope"), "--out", str(tmp_path / "report"))
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"error: {tmp_path / 'nope'}: no such run folder"), missing.stderr

    half = tmp_path / "half"
    (half / "fold0").mkdir(parents=True)
    (half / "fold0" / "metrics.json").write_text("{}")
    (half / "run.json").write_text(json.dumps({"data": str(tmp_path), "config_files": [], "folds": [0, 1]}))
    unfinished = run_script("report.py", str(half), "--out", str(tmp_path / "report"))
    assert unfinished.returncode == 1
    expected = f"error: {half / 'summary.json'}: does not exist; the run has not finished (folds evaluated: fold0)"
    assert unfinished.stderr.startswith(expected), unfinished.stderr

    (half / "run.json").write_text('{"data": ')  # cut off while written
    for result in (run_script("report.py", str(half)), run_script("calibrate.py", str(half))):
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(f"error: {half / 'run.json'}: is not valid JSON"), result.stderr
        assert "Traceback" not in result.stderr


def _images_and_masks(root):
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (24, 32), dtype=np.uint8)).save(
            root / "images" / f"c{i}.png"
        )
        mask = np.zeros((24, 32), dtype=np.uint8)
        mask[5:10, 5:10] = 255 * (i % 2)
        Image.fromarray(mask).save(root / "masks" / f"c{i}.png")


def test_every_tool_refuses_an_output_in_or_inside_its_input(tmp_path):
    _images_and_masks(tmp_path)
    images, masks = tmp_path / "images", tmp_path / "masks"
    prepare = ("prepare_data.py", "folder", "--images", str(images), "--masks", str(masks), "--folds", "3", "--out")
    runs = {
        "prepare_data.py (inside)": run_script(*prepare, str(images / "out")),
        "prepare_data.py (equal)": run_script(*prepare, str(masks)),
        "find_duplicates.py": run_script("find_duplicates.py", str(images), "--out", str(images / "duplicates.csv")),
        "cross_validate.py": run_script(
            "cross_validate.py", "--data", str(tmp_path), "--out", str(tmp_path / "runs" / "a")
        ),
    }
    for tool, result in runs.items():
        assert result.returncode == 1 and "Traceback" not in result.stderr, (tool, result.stderr[-2000:])
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: --out ") and "the input folder" in line, (tool, line)
    assert sorted(p.name for p in images.iterdir()) == ["c0.png", "c1.png", "c2.png", "c3.png"]
    assert sorted(p.name for p in masks.iterdir()) == ["c0.png", "c1.png", "c2.png", "c3.png"]


def test_a_gpu_command_on_a_machine_without_one_says_so():
    import torch

    from custom.engine import check_device

    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="not a device name"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        result = run_script("benchmark.py", "--device", "cuda")
        assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == (
            "error: --device cuda: this machine has no usable CUDA device; use --device cpu."
        )


def test_printed_bundle_commands_are_written_as_the_readme_writes_them():
    """scripts/demo.py prints each command for reuse; ``shlex.join`` made ``''"'"'['"'"'bundle/...`` of a config
    list. The line is the README's own spelling, and a shell reads the same arguments back."""
    import shlex

    from custom.workflows.bundle_command import command_line

    configs = "['bundle/configs/train.json','bundle/configs/evaluate.json']"
    args = ["evaluating", "--config_file", configs, "--output_dir", "runs/my demo"]
    line = command_line(args)
    assert line == f"python -m monai.bundle run evaluating --config_file \"{configs}\" --output_dir 'runs/my demo'"
    assert shlex.split(line)[4:] == args
    assert line.split(" --output_dir")[0] in (REPO / "README.md").read_text()
    assert shlex.split(command_line(["--x", "it's $HOME"]))[4:] == ["--x", "it's $HOME"]  # expanded in "...": not so


def test_the_bundles_own_configs_raise_no_config_location_notice(monkeypatch):
    """MONAI's ``ConfigWorkflow`` logs "Not all config files are in bundle/configs. If logging_file and meta_file
    arenot specified, ..." whenever the files of one ``--config_file`` list lie in different folders: it did for
    every recipe and peer (``configs/recipes/``, ``configs/peers/``). They lie beside ``train.json`` now, and a
    run recorded with the former folders still finds its configs."""
    from monai.bundle import workflows

    from custom.configs import recorded_config_files

    configs = REPO / "bundle" / "configs"
    assert not [p.name for p in configs.iterdir() if p.is_dir()]
    notices: list[str] = []
    monkeypatch.setattr(workflows.logger, "warning", lambda message, *args, **kwargs: notices.append(message))
    stacked = sorted(configs.glob("recipe_*.json")) + sorted(configs.glob("peer_*.json"))
    assert len(stacked) >= 10
    # merged over
    bases = {
        "recipe_cpu_v3": ["recipe_cpu_v2"],
        "recipe_cpu_v4": ["recipe_cpu_v2"],
        "recipe_cpu_v5": ["recipe_cpu_v2", "recipe_cpu_v4"],
        "peer_multitask_unet": ["peer_aumente_maestro"],
    }
    for config in stacked:
        files = [str(configs / f"{name}.json") for name in ["train", *bases.get(config.stem, []), config.stem]]
        workflows.ConfigWorkflow(config_file=files, logging_file=False, workflow_type="train")
    assert not [n for n in notices if n.startswith("Not all config files")], notices
    recorded = ["bundle/configs/train.json", "bundle/configs/recipes/cpu_v2.json", "bundle/configs/peers/unet.json"]
    moved = ["bundle/configs/train.json", "bundle/configs/recipe_cpu_v2.json", "bundle/configs/peer_unet.json"]
    assert recorded_config_files([str(REPO / p) for p in recorded]) == [str(REPO / p) for p in moved]
    assert recorded_config_files(["elsewhere/recipes/mine.json"]) == ["elsewhere/recipes/mine.json"]


def test_the_demo_leaves_out_monais_two_notices_and_nothing_else():
    """MONAI prints, before any line of the bundle runs, a config-trust warning for every config (the README's
    "What a run prints" says why it stays) and, for a config list spread over folders, a config-location
    warning; the demo's console drops exactly those two, as MONAI words them."""
    import inspect

    from monai.bundle import ConfigWorkflow
    from monai.bundle.scripts import create_workflow

    from custom.workflows.bundle_command import MONAI_NOTICES, is_monai_notice

    trust, location = MONAI_NOTICES
    assert trust in inspect.getsource(create_workflow) and location in inspect.getsource(ConfigWorkflow.__init__)
    configs = "['bundle/configs/train.json', 'bundle/configs/recipe_cpu_v2.json']"
    assert is_monai_notice(f'{trust}{configs}: any `"_target_"` value in it is resolved to an importable callable')
    assert is_monai_notice(f"2026-12-07 13:50:13,607 - WARNING - {location}bundle/configs. If logging_file and ...")
    for line in (
        "2026-12-07 13:50:42,423 - nunet - INFO - training NUNet on data/busi/fold0.json (468 images): 45 epochs",
        "2026-12-07 13:50:13,607 - WARNING - Default logging file in configs/logging.conf does not exist",
        "error: --epochs 0: expected a positive integer",
    ):
        assert not is_monai_notice(line), line
