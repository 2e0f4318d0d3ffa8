"""Faults: interrupted runs, full disks, atomic outputs, reproducibility, provenance, safe loading and long runs.

The bad input files are in ``test_input_corpus.py``. Training runs here are real bundle runs in
subprocesses on the demo data at 32x32 (a SIGKILL needs a process of its own); the two-epoch
reference run is shared by the reproducibility, resume and provenance tests.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIGS, REPO, TINY_RUN, run_bundle
from generated import bundle_run, lesion, picture, save_untrained_checkpoint, write_pair
from monai.optimizers import WarmupCosineSchedule
from PIL import Image

from custom.errors import InputError, OutputError, one_line
from custom.fileio import atomic_write_json, check_output_dir
from custom.provenance import file_sha256


def _train_args(demo_dir: Path, out: Path, epochs: int = 2) -> list[str]:
    return [
        "training",
        "--config_file",
        str(CONFIGS / "train.json"),
        "--dataset_dir",
        str(demo_dir),
        "--output_dir",
        str(out),
        "--epochs",
        str(epochs),
        *TINY_RUN,
    ]


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def _bundle_cmd(*args: str) -> tuple[list[str], dict]:
    return [sys.executable, "-m", "monai.bundle", "run", *args], {**os.environ, "PYTHONPATH": str(REPO)}


# ---------------------------------------------------------------------------------------------------
# Atomic outputs
# ---------------------------------------------------------------------------------------------------


def test_a_full_disk_keeps_the_old_file_and_names_the_new_one(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"dice": 0.5})

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError) as error:
        atomic_write_json(path, {"dice": 0.7})
    assert one_line(error.value) == f"{path}: cannot write it (No space left on device)"
    assert json.loads(path.read_text()) == {"dice": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_checkpoint_saver_keeps_the_previous_checkpoint_when_a_save_fails(tmp_path, monkeypatch):
    """AtomicCheckpointSaver: MONAI's file names; a save that fails half-way leaves the previous file intact."""
    from ignite.engine import Engine, Events

    from custom.engine.checkpoint import AtomicCheckpointSaver

    net = torch.nn.Linear(2, 2)
    engine = Engine(lambda engine, batch: None)

    @engine.on(Events.EPOCH_COMPLETED(once=1))
    def change_weights(_):
        net.weight.data.fill_(1.0)

    AtomicCheckpointSaver(str(tmp_path), {"net": net, "trainer": engine}, save_interval=1, n_saved=1).attach(engine)
    real_save = torch.save

    def half_written(obj, f, *args, **kwargs):
        if engine.state.epoch == 2:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OutputError, match=r"checkpoint_epoch=2\.pt: cannot write it \(No space left on device\)"):
        engine.run([0], max_epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=1.pt"]
    saved = torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)
    assert saved["trainer"]["iteration"] == 1 and torch.equal(saved["net"]["weight"], torch.ones(2, 2))


def test_best_model_after_a_resume_is_replaced_only_by_a_better_epoch(tmp_path):
    """The key-metric tracking list travels in the training checkpoint: a resumed run keeps the best model.pt."""
    from ignite.engine import Engine, Events

    from custom.engine.checkpoint import AtomicCheckpointSaver

    net = torch.nn.Linear(1, 1, bias=False)

    def evaluate(scores: list[float], saver_state: dict | None = None) -> AtomicCheckpointSaver:
        evaluator = Engine(lambda engine, batch: None)

        @evaluator.on(Events.EPOCH_COMPLETED)
        def score(engine):
            engine.state.metrics = {"dice": scores[engine.state.epoch - 1]}
            net.weight.data.fill_(scores[engine.state.epoch - 1])  # the weights say which epoch was saved

        saver = AtomicCheckpointSaver(
            str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="dice", key_metric_filename="model.pt"
        )
        if saver_state is not None:
            saver.load_state_dict(saver_state)
        saver.attach(evaluator)
        evaluator.run([0], max_epochs=len(scores))
        return saver

    state = evaluate([0.5, 0.7, 0.6]).state_dict()
    state = torch.load(_saved(tmp_path, state), weights_only=True)  # as the training checkpoint stores it
    evaluate([0.65], state)  # resumed: worse than before the interruption
    assert torch.load(tmp_path / "model.pt", weights_only=True)["weight"].item() == pytest.approx(0.7)
    evaluate([0.8], state)
    assert torch.load(tmp_path / "model.pt", weights_only=True)["weight"].item() == pytest.approx(0.8)


def _saved(folder, state) -> Path:
    path = folder / "state.pt"
    torch.save(state, path)
    return path


SCHEDULES = {
    "T_max": lambda optimizer, total: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total),
    "t_total": lambda optimizer, total: WarmupCosineSchedule(optimizer, warmup_steps=2, t_total=total),
}


@pytest.mark.parametrize("length_key", list(SCHEDULES))
def test_a_resumed_scheduler_follows_the_configured_schedule(length_key, caplog):
    """Resuming with another ``--epochs`` changes the cosine's length and keeps its position (step count)."""
    from custom.engine.checkpoint import keep_configured_schedule

    def scheduler(total: int):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return SCHEDULES[length_key](optimizer, total)

    old = scheduler(45)
    for _ in range(30):
        old.optimizer.step()
        old.step()
    resumed = scheduler(30)
    configured = resumed.state_dict()
    resumed.load_state_dict(old.state_dict())
    with caplog.at_level("WARNING"):
        keep_configured_schedule("lr_scheduler", resumed, configured)
    assert getattr(resumed, length_key) == 30 and resumed.last_epoch == 30
    assert f"{length_key} 45 -> 30" in caplog.text
    resumed.optimizer.step()
    resumed.step()
    fresh = scheduler(30)
    for _ in range(31):
        fresh.optimizer.step()
        fresh.step()
    assert resumed.get_last_lr() == pytest.approx(fresh.get_last_lr())


KILLED_WRITER = """
import sys, torch
from custom.engine.checkpoint import AtomicDiskSaver
saver = AtomicDiskSaver(sys.argv[1])
step = 0
while True:
    step += 1
    saver({"step": step, "weights": torch.full((1_000_000,), float(step))}, "model.pt")
"""


@pytest.mark.slow
def test_a_checkpoint_killed_while_being_written_leaves_the_previous_one_loadable(tmp_path):
    """SIGKILL at random moments while a temporary checkpoint file is open: model.pt always loads, whole."""
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], env=env)
    try:
        for _ in range(3):
            deadline = time.monotonic() + 300
            # a write is in progress while its hidden temporary file exists (named with the writer's pid:
            # the killed writers leave theirs behind)
            while not ((tmp_path / "model.pt").exists() and list(tmp_path.glob(f".model.pt.{writer.pid}.*.tmp"))):
                assert writer.poll() is None and time.monotonic() < deadline
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            writer.send_signal(signal.SIGSTOP)  # freeze it mid-write, check, then kill it there
            saved = torch.load(tmp_path / "model.pt", weights_only=True)
            assert torch.equal(saved["weights"], torch.full((1_000_000,), float(saved["step"])))
            writer.kill()
            writer.wait()
            saved = torch.load(tmp_path / "model.pt", weights_only=True)
            assert torch.equal(saved["weights"], torch.full((1_000_000,), float(saved["step"])))
            writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], env=env)
    finally:
        writer.kill()
        writer.wait()


# ---------------------------------------------------------------------------------------------------
# Reproducibility, resume and provenance
# ---------------------------------------------------------------------------------------------------


def test_the_same_seed_gives_byte_identical_fold_files(tmp_path):
    from custom.data.folder import prepare_folder

    for i in range(12):
        mask = lesion() if i % 3 else np.zeros_like(lesion())
        write_pair(
            tmp_path / "raw", f"case_{i}", Image.fromarray(picture(i)), Image.fromarray(mask.astype(np.uint8) * 255)
        )
    names = ["datalist.json", *(f"fold{k}.json" for k in range(3))]

    def prepare(out: str, seed: int) -> dict[str, bytes]:
        prepare_folder(
            str(tmp_path / "raw" / "images"), str(tmp_path / "raw" / "masks"), str(tmp_path / out), folds=3, seed=seed
        )
        return {name: (tmp_path / out / name).read_bytes() for name in names}

    first = prepare("out", seed=7)
    assert prepare("out", seed=7) == first
    other = prepare("out", seed=8)
    assert any(other[f"fold{k}.json"] != first[f"fold{k}.json"] for k in range(3))


@pytest.fixture(scope="module")
def reference_run(demo_dir, tmp_path_factory) -> Path:
    """Two epochs on the demo data, uninterrupted."""
    out = tmp_path_factory.mktemp("reference")
    run_bundle(*_train_args(demo_dir, out))
    return out


@pytest.mark.slow
def test_two_runs_with_the_same_seed_give_the_same_losses(reference_run, demo_dir, tmp_path):
    run_bundle(*_train_args(demo_dir, tmp_path))
    first, second = _log(reference_run), _log(tmp_path)
    assert [r["epoch"] for r in first] == [r["epoch"] for r in second] == [1, 2]
    for a, b in zip(first, second):
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"] and a["lr"] == b["lr"]


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(reference_run, demo_dir, tmp_path):
    """SIGKILL during epoch 2 (checkpoint of epoch 1 on disk), then ``--resume True``: epochs 1 and 2 once each,
    and epoch 2 has the loss and learning rate of the uninterrupted run (network, optimiser, scheduler, AMTL
    and random generators all restored)."""
    cmd, env = _bundle_cmd(*_train_args(demo_dir, tmp_path))
    run = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while not (tmp_path / "checkpoint_epoch=1.pt").exists():
            assert run.poll() is None, "the run ended before writing its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # into epoch 2: a third of epoch 1's duration, well before epoch 2 ends
        time.sleep(_log(tmp_path)[0]["elapsed_s"] / 3)
        run.send_signal(signal.SIGKILL)
        assert run.wait() == -signal.SIGKILL
    finally:
        run.kill()
    assert [r["epoch"] for r in _log(tmp_path)] == [1]
    run_bundle(*_train_args(demo_dir, tmp_path), "--resume", "True")
    resumed, reference = _log(tmp_path), _log(reference_run)
    assert [r["epoch"] for r in resumed] == [1, 2]
    assert resumed[1]["lr"] == reference[1]["lr"]
    assert resumed[1]["train_loss"] == pytest.approx(reference[1]["train_loss"], rel=1e-6)
    assert resumed[1]["val_loss"] == pytest.approx(reference[1]["val_loss"], rel=1e-6)
    runs = json.loads((tmp_path / "provenance.json").read_text())["runs"]
    assert len(runs) == 2 and runs[1]["resolved"]["resume"] is True


@pytest.mark.slow
def test_the_run_directory_records_what_produced_it(reference_run, demo_dir):
    (record,) = json.loads((reference_run / "provenance.json").read_text())["runs"]
    git = ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet"]
    if subprocess.run([*git, "HEAD"], capture_output=True).returncode == 0:  # a checkout with commits
        assert subprocess.run([*git, f"{record['git_commit']}^{{commit}}"], capture_output=True).returncode == 0
    assert record["config"]["train"]["trainer"]["_target_"] == "SupervisedTrainer"  # the merged config, as run
    assert record["resolved"]["epochs"] == 2 and record["resolved"]["spatial_size"] == [32, 32]
    assert record["datalist"] == {
        "path": str((demo_dir / "fold0.json").resolve()),
        "sha256": file_sha256(demo_dir / "fold0.json"),
    }
    assert {"torch", "monai", "numpy", "pytorch-ignite"} <= set(record["versions"])
    assert len(record["training_records_sha256"]) == 64 and record["created"]
    checkpoint = torch.load(reference_run / "checkpoint_epoch=2.pt", weights_only=True)
    assert checkpoint["provenance"]["runs"] == [record]
    assert {"network", "loss", "optimizer", "lr_scheduler", "trainer", "rng"} <= set(checkpoint)


# ---------------------------------------------------------------------------------------------------
# Safe loading and use
# ---------------------------------------------------------------------------------------------------


def _calls(path: Path, module: str, function: str) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == function
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == module
    ]


def test_every_torch_load_in_the_code_uses_weights_only():
    sources = sorted((REPO / "custom").rglob("*.py")) + sorted((REPO / "scripts").rglob("*.py"))
    for path in sources:
        for call in _calls(path, "torch", "load"):
            keywords = {k.arg: k.value for k in call.keywords}
            assert (
                isinstance(keywords.get("weights_only"), ast.Constant) and keywords["weights_only"].value is True
            ), f"{path.relative_to(REPO)}:{call.lineno}: torch.load without weights_only=True"
        for call in _calls(path, "np", "load"):
            allow = {k.arg: k.value for k in call.keywords}.get("allow_pickle")
            assert allow is None or (isinstance(allow, ast.Constant) and allow.value is False), f"{path}:{call.lineno}"


def test_check_output_dir_refuses_the_folder_of_an_input_and_folders_inside_it(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "in")
    records = [{"image": str(tmp_path / "in" / "a.png")}]
    for same in (tmp_path / "in", f"{tmp_path / 'in'}/", tmp_path / "link", tmp_path / "in" / ".." / "in"):
        with pytest.raises(ValueError, match="is the input folder"):
            check_output_dir(same, records)
    for inside in (tmp_path / "in" / "predictions", tmp_path / "link" / "a" / "b"):
        with pytest.raises(ValueError, match="is inside the input folder"):
            check_output_dir(inside, records)
    assert check_output_dir(tmp_path, records)
    assert check_output_dir(tmp_path / "predictions", records)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match=r"--output_dir .*a_file: is a file, not a folder\.$"):
        check_output_dir(tmp_path / "a_file", records)  # not the temporary file that could not be written in it


def _failed_inference(tmp_path, output_dir) -> str | None:
    """The one-line message of an inference run over ``tmp_path/images`` (untrained model) that must fail."""
    with pytest.raises(Exception) as error:
        bundle_run(
            "run",
            "inference.json",
            dataset_dir=str(tmp_path),
            input_dir=str(tmp_path / "images"),
            output_dir=str(output_dir),
            ckpt_path=str(save_untrained_checkpoint(tmp_path / "model.pt")),
            spatial_size=[32, 32],
        )
    return one_line(error.value)


def test_inference_refuses_to_write_into_its_input_folder(tmp_path):
    """Needs inference.json's ``initialize`` to call ``custom.fileio.check_output_dir`` (see docs/reliability.md)."""
    write_pair(tmp_path, "a")
    before = sorted(p.name for p in (tmp_path / "images").iterdir())
    message = _failed_inference(tmp_path, output_dir=tmp_path / "images")
    assert message is not None and "is the input folder" in message and str(tmp_path / "images") in message
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == before


# ---------------------------------------------------------------------------------------------------
# Long runs
# ---------------------------------------------------------------------------------------------------


def test_a_full_disk_during_inference_names_the_file_being_written(tmp_path, monkeypatch):
    """The mask of the first image is written into /dev/full, which accepts no byte (ENOSPC).

    Outputs are written to a temporary sibling and renamed (custom.fileio.atomic_file), so the device
    is put where that sibling is opened.
    """
    import builtins

    import custom.fileio

    def open_full_for_the_mask(file, mode="r", **kwargs):
        return builtins.open("/dev/full", "wb") if "a_seg.png" in str(file) else builtins.open(file, mode, **kwargs)

    monkeypatch.setattr(custom.fileio, "open", open_full_for_the_mask, raising=False)
    write_pair(tmp_path, "a")
    (tmp_path / "out").mkdir()
    assert (
        _failed_inference(tmp_path, output_dir=tmp_path / "out")
        == f"{tmp_path / 'out' / 'a_seg.png'}: cannot write it (No space left on device)"
    )


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.slow
def test_inference_over_2000_images_keeps_its_memory_flat(tmp_path):
    """Resident memory of the inference process after the first 200 images grows by less than 10 %."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2000):
        Image.fromarray(picture(i, (32, 32))).save(images / f"img_{i:04d}.png")
    out = tmp_path / "out"
    cmd, env = _bundle_cmd(
        "run",
        "--config_file",
        str(CONFIGS / "inference.json"),
        "--dataset_dir",
        str(tmp_path),
        "--input_dir",
        str(images),
        "--output_dir",
        str(out),
        "--spatial_size",
        "[32,32]",
        "--ckpt_path",
        str(save_untrained_checkpoint(tmp_path / "model.pt")),
    )
    start = time.monotonic()
    run = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []  # (images done, RSS in KiB)
    try:
        while run.poll() is None:
            done = sum(1 for name in os.listdir(out) if name.endswith(".json")) if out.is_dir() else 0
            try:
                samples.append((done, _rss_kib(run.pid)))
            except (FileNotFoundError, StopIteration):  # the process ended between poll() and the read
                break
            time.sleep(0.25)
        stderr = run.communicate()[1]
    finally:
        run.kill()
    assert run.returncode == 0, stderr[-3000:]
    assert len(list(out.glob("*_seg.png"))) == len(list(out.glob("*.json"))) == 2000
    after_200 = [rss for done, rss in samples if done >= 200]
    growth = max(after_200) / after_200[0] - 1
    print(
        f"2000 images in {time.monotonic() - start:.0f} s; RSS at 200 images {after_200[0] / 1024:.0f} MiB, "
        f"max after {max(after_200) / 1024:.0f} MiB (+{growth:.1%}), {len(after_200)} samples"
    )
    assert growth < 0.10


def test_preparation_moves_in_complete_files_only_and_clears_a_killed_runs_staging(tmp_path, monkeypatch):
    """Every output is written in the staging folder before the first rename; a dead process's staging is removed."""
    import os

    import custom.data.pipeline as pipeline
    from custom.data.folder import prepare_folder

    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for i in range(6):
        Image.fromarray(picture(i, (24, 32))).save(tmp_path / "images" / f"c{i}.png")
        Image.fromarray((lesion((24, 32)) * (i % 2)).astype(np.uint8) * 255).save(tmp_path / "masks" / f"c{i}.png")
    out = tmp_path / "out"
    args = (str(tmp_path / "images"), str(tmp_path / "masks"), str(out))
    prepare_folder(*args, folds=3, cache_size=16)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    # a run killed long ago left its staging folder behind (a process id that does not exist)
    abandoned = out / ".prepare-999999999-x.tmp"
    (abandoned / "images").mkdir(parents=True)
    # a run that fails at its first rename into place: everything it would move in was complete by then
    staged_then: list[str] = []
    real_rename = os.rename

    def failing_rename(src, dst):
        staged_then.extend(sorted(p.name for p in Path(dst).parent.iterdir()))  # dst: staging/previous-images
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(pipeline.os, "rename", failing_rename)
    with pytest.raises(OSError):
        prepare_folder(*args, folds=4, cache_size=16)
    monkeypatch.setattr(pipeline.os, "rename", real_rename)
    assert {"fold0.json", "fold3.json", "datalist.json", "summary.json", "cache_16.npz", "images", "labels"} <= set(
        staged_then
    )
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # unchanged
    assert not abandoned.exists() and not list(out.glob(".prepare-*"))


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(demo_dir, tmp_path):
    """``--resume True`` loads network, AMTL parameters, optimiser, scheduler and epoch from checkpoint_epoch=N.pt."""
    out = tmp_path / "run"
    # stop after epoch 1 of a 3-epoch plan
    first = run_bundle(*_train_args(demo_dir, out, epochs=3), "--train#trainer#max_epochs", "1")
    assert first.returncode == 0
    saved = torch.load(out / "checkpoint_epoch=1.pt", weights_only=True)
    assert {"network", "loss", "optimizer", "lr_scheduler", "trainer"} <= set(saved)
    assert saved["trainer"]["iteration"] == saved["trainer"]["epoch_length"]  # ignite stores the epoch as iterations
    # resumed with a longer plan: the schedule follows the new --epochs, the best model's score is kept
    run_bundle(*_train_args(demo_dir, out, epochs=4), "--resume", "True")
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    assert [p.name for p in out.glob("checkpoint_*.pt")] == [
        "checkpoint_epoch=4.pt"
    ]  # epoch 1's, resumed from, is gone
    resumed = torch.load(out / "checkpoint_epoch=4.pt", weights_only=True)
    assert resumed["lr_scheduler"]["last_epoch"] == 4 and resumed["lr_scheduler"]["T_max"] == 4
    ((best_score, _),) = resumed["best_model"]["_saved"]  # ignite's name; AtomicDiskSaver writes it as model.pt
    assert best_score == pytest.approx(max(r["val_dice_all"] for r in log))


@pytest.mark.slow
def test_a_new_run_in_the_folder_of_a_longer_one_keeps_its_own_checkpoint(demo_dir, tmp_path):
    """The earlier run's ``checkpoint_epoch=2.pt`` used to outlive the new run's epoch 1 (the newest number
    was kept), so ``--resume`` continued the old run."""
    run_bundle(*_train_args(demo_dir, tmp_path, epochs=2))
    run_bundle(*_train_args(demo_dir, tmp_path, epochs=1), "--learning_rate", "1e-3")
    assert [p.name for p in tmp_path.glob("checkpoint_*.pt")] == ["checkpoint_epoch=1.pt"]
    saved = torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)
    assert saved["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(1e-3)


def test_a_cross_validation_refuses_to_continue_on_folds_prepared_again(demo_dir, tmp_path, bundle_runs_in_process):
    """A fold already evaluated is skipped on a re-run; after a new preparation (other seed, other folds)
    its kept results would be scored on images that are now training images."""
    from custom.workflows.crossval import cross_validate

    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    run = dict(data=str(data), out=str(tmp_path / "run"), folds=[0], overrides={"epochs": 0}, log=lambda _: None)
    with pytest.raises(InputError, match="--epochs 0"):  # stops at once, after recording the run
        cross_validate(**run)
    datalist = json.loads((data / "fold0.json").read_text())
    datalist["test"], datalist["training"] = datalist["training"][:3], datalist["test"] + datalist["training"][3:]
    (data / "fold0.json").write_text(json.dumps(datalist))
    with pytest.raises(InputError) as error:
        cross_validate(**run)
    assert one_line(error.value) == (
        f"{data / 'fold0.json'}: changed since {tmp_path / 'run'} was run (the dataset was prepared again); "
        "choose another --out."
    )
