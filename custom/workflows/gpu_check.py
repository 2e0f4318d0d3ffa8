"""The GPU check: one prepared script for the few minutes of a lent GPU, with a CPU dry mode tested in CI.

Stage: input a prepared data folder with its 256x256 cache (``prepare_data.py ... --cache-size 256``);
output ``<out>/gpu_check.json`` with, measured in one run on one device:

1. ``benchmark``: :func:`custom.workflows.benchmark.benchmark`, the bundle's training and inference pipeline
   against the plain baseline (images/s, latency, speed-ups);
2. ``fast``: a short training of fold 0 from the cache with every speed switch on (``amp``,
   ``channels_last``, ``cudnn_benchmark``, ``compile``, and ``gpu_augment.json``);
3. ``fp32``: the same training with every switch off, for the same-fold comparison of time and of the
   validation curve (``speedup`` = fp32 wall time / fast wall time; ``val_dice_all`` of both).

Each training is a ``monai.bundle run`` subprocess, as a user runs it, so start-up and compile times
count. ``dry=True`` runs the same steps on the CPU on the synthetic demo data at 32x32 for one epoch,
so the script cannot rot between the rare sessions that have a GPU; ``compile`` runs there with
TorchDynamo's ``eager`` backend (the same graph capture and MONAI's compiled-trainer path, without
the minutes of C++ compilation that inductor needs on a CPU).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from custom.cli import run as run_command
from custom.engine import check_device
from custom.errors import InputError
from custom.fileio import atomic_write_json
from custom.paths import CONFIGS_DIR
from custom.workflows.benchmark import benchmark
from custom.workflows.bundle_command import override_args, run_bundle
from custom.workflows.crossval import DEFAULT_CONFIG

CONFIGS = CONFIGS_DIR
SPEED_SWITCHES = {"amp": True, "channels_last": True, "cudnn_benchmark": True, "gpu_augment": True, "compile": True}
FP32 = dict.fromkeys(SPEED_SWITCHES, False)


def _train(
    name: str, data: Path, cache: Path, out: Path, settings: Mapping[str, Any], log: Callable[[str], None]
) -> dict:
    """Trains fold 0 from the cache with ``settings``; wall time and the validation curve."""
    run_dir = out / name
    overrides = dict(settings)
    # gpu_augment is a config file (gpu_augment.json), the other switches are keys of train.json
    files = ("train.json", "cached.json") + (("gpu_augment.json",) if overrides.pop("gpu_augment", False) else ())
    config = "[" + ",".join(f"'{CONFIGS / c}'" for c in files) + "]"
    args = [
        "training",
        "--config_file",
        config,
        *override_args(
            {"dataset_dir": str(data), "cache_file": str(cache), "fold": 0, "output_dir": str(run_dir), **overrides}
        ),
    ]
    start = time.perf_counter()
    run_bundle(args, out / f"{name}.log", lambda line: log(f"[{name}] {line}") if "epoch" in line else None)
    wall = time.perf_counter() - start
    curve = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return {
        "settings": dict(settings),
        "wall_s": round(wall, 1),
        "epoch_s": [round(r["elapsed_s"], 1) for r in curve if "elapsed_s" in r],
        "val_dice_all": [r.get("val_dice_all") for r in curve],
        "val_accuracy": [r.get("val_accuracy") for r in curve],
    }


def gpu_check(
    out: str,
    data: str | None = None,
    device: str = "cuda",
    epochs: int = 3,
    dry: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Runs the three measurements and writes ``<out>/gpu_check.json``; returns its content.

    Args:
        out: output folder.
        data: prepared data folder holding ``cache_256.npz`` (``dry``: generated demo data).
        device: ``cuda`` (``dry``: ``cpu``).
        epochs: epochs of each short training (``dry``: 1).
        dry: the CPU rehearsal on the demo data at 32x32 (see the module docstring).
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    switches = dict(SPEED_SWITCHES)
    common: dict[str, Any] = {"epochs": epochs}
    bench: dict[str, Any] = {}
    if dry:
        from custom.data.busi import prepare_busi
        from custom.data.demo import write_raw

        device, epochs = "cpu", 1
        data_dir = Path(tempfile.mkdtemp(prefix="gpu_check_demo_", dir=out_dir))
        write_raw(data_dir / "raw")
        prepare_busi(str(data_dir / "raw"), str(data_dir), dedup="none", cache_size=32)
        cache = data_dir / "cache_32.npz"
        common = {
            "epochs": 1,
            "spatial_size": [32, 32],
            "batch_size": 4,
            "num_workers": 0,
            "train#trainer#compile_kwargs": {"backend": "eager"},
        }
        bench = {"iterations": 1, "repeats": 1, "infer_repeats": 1, "overrides": {"spatial_size": [32, 32]}}
    else:
        if data is None:
            raise InputError("--data: the prepared folder with cache_256.npz (or --dry True for the CPU rehearsal).")
        data_dir = Path(data)
        cache = data_dir / "cache_256.npz"
        if not cache.is_file():
            raise InputError(f"{cache}: missing; prepare the data with --cache-size 256.")
        check_device(device)
    result: dict[str, Any] = {"device": device, "dry": dry, "data": str(data_dir), "epochs": common["epochs"]}
    start = time.perf_counter()
    log("[gpu_check] benchmark")
    result["benchmark"] = benchmark(device, str(data_dir), DEFAULT_CONFIG, log=log, **bench)
    for name, settings in (("fast", switches), ("fp32", FP32)):
        log(f"[gpu_check] training {name}: {settings}")
        result[name] = _train(name, data_dir, cache, out_dir, {**common, **settings}, log)
    result["speedup"] = round(result["fp32"]["wall_s"] / result["fast"]["wall_s"], 3)
    result["total_s"] = round(time.perf_counter() - start, 1)
    atomic_write_json(out_dir / "gpu_check.json", result)
    return result


def gpu_check_command(
    out: str = "gpu_check", data: str | None = None, device: str = "cuda", epochs: int = 3, dry: bool = False
) -> None:
    """The prepared GPU check: benchmark, then fold 0 trained briefly with every speed switch and in fp32.

    ``python scripts/gpu_check.py --data data/busi --out gpu_check [--epochs 3]`` on a CUDA machine (under
    8 minutes); ``--dry True --out /tmp/gpu_check`` is the CPU rehearsal (demo data, 32x32). Writes
    ``<out>/gpu_check.json`` (see :func:`gpu_check`) and prints the headline figures.
    """
    result = gpu_check(out, data=data, device=device, epochs=epochs, dry=dry)
    bench = result["benchmark"]
    print(
        f"{result['device']}: training {bench['train_img_s']:.1f} img/s ({bench['train_speedup']:.2f}x the baseline), "
        f"inference speed-up {bench['infer_speedup']:.2f}; short training with the speed switches "
        f"{result['speedup']:.2f}x fp32; total {result['total_s']:.0f} s -> {out}/gpu_check.json"
    )


def main() -> None:
    """``nunet-gpu-check`` and ``scripts/gpu_check.py``: :func:`gpu_check_command` on the command line."""
    run_command(gpu_check_command)
