"""Speed of the bundle's training and inference pipelines against a plain baseline, measured in one process.

Both pipelines are built from the same bundle config (``train.json``), so what is measured is what
``monai.bundle run training`` runs: "ours" is the config as it stands for the device (mixed
precision, channels-last, cuDNN autotuning, fused Adam, a threaded loader on GPUs, and whatever
switches the caller sets), the baseline the same network and data with those switches off (fp32,
``CacheDataset`` plus random transforms in ``DataLoader`` workers, no compile). Inference compares
eager fp32 PyTorch with the network that ``inference.json`` runs on the device
(:func:`custom.deploy.accelerate`: ONNX Runtime on the CPU).

Every rate is the median over ``repeats`` timed runs after one warm-up run; GPU timings are
synchronised. The full-protocol time is extrapolated from the measured rates, not run.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from ignite.engine import Engine, Events

from custom.configs import bundle_parser
from custom.deploy import accelerate
from custom.engine import check_device, check_whole_number
from custom.paths import TRAIN_CONFIG

DEFAULT_CONFIG = TRAIN_CONFIG

# the plain pipeline the speed-ups are measured against (see the module docstring)
BASELINE = {
    "amp": False,
    "channels_last": False,
    "cudnn_benchmark": False,
    "compile": False,
    "optimizer#fused": False,
    "train#device_transforms": [],
    "train#dataloader#_target_": "DataLoader",
}

# the N-Unet paper's protocol on BUSI: 780 images split 6:2:2 into 468 training, 156 validation and 156 test
# images per fold, 5 folds of 800 epochs, validation every epoch
BUSI_TRAIN_IMAGES = 468
BUSI_VALIDATION_IMAGES = 156
PROTOCOL_FOLDS = 5
PROTOCOL_EPOCHS = 800


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_epochs(engine: Engine, device: torch.device) -> list[float]:
    """Attaches epoch timers to ``engine``; the returned list fills with each epoch's seconds."""
    times: list[float] = []
    start: list[float] = []

    def started(_: Engine) -> None:
        _synchronize(device)
        start[:] = [time.perf_counter()]

    def completed(_: Engine) -> None:
        _synchronize(device)
        times.append(time.perf_counter() - start[0])

    engine.add_event_handler(Events.EPOCH_STARTED, started)
    engine.add_event_handler(Events.EPOCH_COMPLETED, completed)
    return times


def _median_seconds(run: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    times = []
    for i in range(warmup + repeats):
        _synchronize(device)
        start = time.perf_counter()
        run()
        _synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


class PipelineBench:
    """The training pipeline of a bundle config with ``overrides``, on ``device``, for timing.

    Args:
        config: bundle config file(s), merged in order.
        data: prepared dataset folder (``fold<k>.json``); fold 0 is used.
        device: where to train.
        output_dir: a scratch folder for anything the config writes.
        overrides: bundle keys to set (e.g. :data:`BASELINE`).
    """

    def __init__(
        self,
        config: str | Sequence[str],
        data: str,
        device: torch.device,
        output_dir: str,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        settings = {
            "dataset_dir": data,
            "fold": 0,
            "output_dir": output_dir,
            "device": f"$torch.device('{device}')",
            "train#handlers": [],  # no checkpoints, logs or validation inside the timed epochs
            "validate#handlers": [],
            **dict(overrides or {}),
        }
        self.parser = bundle_parser(config, settings)
        self.device = device
        self.batch_size = int(self.parser["batch_size"])
        self.parser.get_parsed_content("initialize")  # evaluating the list runs it: seeds, cuDNN settings

    def train_img_s(self, iterations: int, repeats: int) -> float:
        """Training images per second: ``repeats`` epochs of ``iterations`` batches after one warm-up epoch."""
        self.parser["train#trainer#epoch_length"] = iterations
        self.parser["train#trainer#max_epochs"] = repeats + 1
        trainer = self.parser.get_parsed_content("train#trainer")
        times = _timed_epochs(trainer, self.device)
        trainer.run()
        return iterations * self.batch_size / statistics.median(times[1:])

    def validation_img_s(self, repeats: int) -> float:
        """Validation images per second (network, post-processing, metrics) over the validation split."""
        evaluator = self.parser.get_parsed_content("validate#evaluator")
        images = len(self.parser.get_parsed_content("validate#dataset"))
        return images / _median_seconds(evaluator.run, self.device, repeats)

    def data_img_s(self, iterations: int, repeats: int) -> float:
        """Images per second of the training data pipeline alone (cached preprocessing + augmentation)."""
        loader = self.parser.get_parsed_content("train#dataloader")

        def batches() -> None:
            for i, _ in enumerate(loader):
                if i + 1 == iterations:
                    break

        return iterations * self.batch_size / _median_seconds(batches, self.device, repeats)

    def network(self) -> nn.Module:
        """The config's network in eval mode on the device, in the default memory format."""
        return self.parser.get_parsed_content("network_def").to(self.device).eval()


# training precision / layout modes compared side by side (``train_modes``); compile runs in the config's precision
TRAIN_MODES: dict[str, dict[str, Any]] = {
    "fp32": {"amp": False, "channels_last": False},
    "fp32_channels_last": {"amp": False, "channels_last": True},
    "bf16": {"amp": True, "amp_dtype": "bfloat16", "channels_last": False},
    "bf16_channels_last": {"amp": True, "amp_dtype": "bfloat16", "channels_last": True},
    "fp32_compile": {"amp": False, "channels_last": False, "compile": True},
}


def train_modes(
    config: str | Sequence[str],
    data: str,
    device: torch.device,
    scratch: str,
    sizes: Sequence[int],
    modes: Sequence[str],
    iterations: int,
    repeats: int,
    overrides: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Training images/s of every mode of :data:`TRAIN_MODES` at every input size, in one process.

    Each figure is the median over ``repeats`` epochs of ``iterations`` batches after one warm-up
    epoch; the warm-up epoch's seconds are reported too (for ``compile`` they include compiling).
    Returns ``{"<size>": {"<mode>": {"img_s", "warmup_s", "speedup_vs_fp32"}}}`` plus the mode the
    config picks on this device (``default_mode``: ``amp`` follows :func:`custom.engine.amp_supported`).
    """
    unknown = sorted(set(modes) - set(TRAIN_MODES))
    if unknown:
        raise ValueError(f"unknown training mode(s) {unknown}; choose from {sorted(TRAIN_MODES)}.")
    result: dict[str, Any] = {}
    for size in sizes:
        row: dict[str, Any] = {}
        for mode in modes:
            log(f"training mode {mode} at {size}x{size}")
            settings = {**dict(overrides or {}), "spatial_size": [size, size], **TRAIN_MODES[mode]}
            bench = PipelineBench(config, data, device, os.path.join(scratch, f"{mode}_{size}"), settings)
            bench.parser["train#trainer#epoch_length"] = iterations
            bench.parser["train#trainer#max_epochs"] = repeats + 1
            trainer = bench.parser.get_parsed_content("train#trainer")
            times = _timed_epochs(trainer, device)
            trainer.run()
            row[mode] = {"img_s": iterations * bench.batch_size / statistics.median(times[1:]), "warmup_s": times[0]}
        if "fp32" in row:
            for figures in row.values():
                figures["speedup_vs_fp32"] = figures["img_s"] / row["fp32"]["img_s"]
        result[str(size)] = row
    default = PipelineBench(config, data, device, os.path.join(scratch, "default"), overrides)
    amp, channels_last = (bool(default.parser.get_parsed_content(k)) for k in ("amp", "channels_last"))
    result["default_mode"] = ("bf16" if amp else "fp32") + ("_channels_last" if channels_last else "")
    return result


def _inference_seconds(network: nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        return _median_seconds(lambda: network(x), x.device, repeats, warmup=2)


def _max_abs_difference(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    return max(float((a[k].float().cpu() - b[k].float().cpu()).abs().max()) for k in a)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _versions(device: torch.device) -> dict[str, Any]:
    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    cuda = device.type == "cuda"
    from custom.engine.amp import amp_supported

    return {
        "bf16_kernels": amp_supported(device) if not cuda else torch.cuda.is_bf16_supported(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "monai": installed("monai"),
        "onnxruntime": installed("onnxruntime"),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "python": platform.python_version(),
    }


def benchmark(
    device: str = "cpu",
    data: str | None = None,
    config: str | Sequence[str] = DEFAULT_CONFIG,
    iterations: int = 10,
    repeats: int = 3,
    infer_repeats: int = 10,
    overrides: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
    modes: Sequence[str] = (),
    mode_sizes: Sequence[int] = (128, 256),
) -> dict[str, Any]:
    """Measures our pipeline and the baseline on ``device`` and returns the figures (see ``scripts/benchmark.py``).

    Args:
        device: ``cpu`` or ``cuda`` (``cuda:<k>``).
        data: a prepared dataset folder; ``None`` generates the synthetic demo dataset in a temp folder.
        config: the training config(s) both pipelines are built from.
        iterations: batches per timed training epoch (the loader cycles through small datasets).
        repeats: timed epochs / passes per measurement, after one warm-up.
        infer_repeats: timed forward passes per inference measurement.
        overrides: bundle keys applied to both pipelines (e.g. ``spatial_size``, ``batch_size``), then
            :data:`BASELINE` on top for the baseline.
        modes: training modes of :data:`TRAIN_MODES` to compare at each of ``mode_sizes`` (:func:`train_modes`);
            none by default, since bf16 on a CPU without bf16 kernels takes minutes per batch at 256x256.
        mode_sizes: input sides for ``modes``.
    """
    dev = check_device(device)
    for key, value in (("iterations", iterations), ("repeats", repeats), ("infer_repeats", infer_repeats)):
        check_whole_number(key, value)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    common = dict(overrides or {})
    with tempfile.TemporaryDirectory() as scratch:
        if data is None:
            from custom.data import ensure_demo_dataset

            data = ensure_demo_dataset(os.path.join(scratch, "demo"))
        ours = PipelineBench(config, data, dev, os.path.join(scratch, "ours"), common)
        base = PipelineBench(config, data, dev, os.path.join(scratch, "baseline"), {**common, **BASELINE})
        settings = {k: ours.parser[k] for k in ("batch_size", "spatial_size", "in_channels", "num_workers")}
        settings.update(
            {k: ours.parser.get_parsed_content(k) for k in ("amp", "amp_dtype", "channels_last", "compile")}
        )
        settings["cudnn_benchmark"] = ours.parser.get_parsed_content("cudnn_benchmark")
        settings["gpu_augment"] = bool(ours.parser["train#device_transforms"])
        log(f"benchmark on {dev}: {settings}")

        result: dict[str, Any] = {}
        log("training: ours")
        result["train_img_s"] = ours.train_img_s(iterations, repeats)
        log("training: baseline")
        result["baseline_train_img_s"] = base.train_img_s(iterations, repeats)
        result["train_speedup"] = result["train_img_s"] / result["baseline_train_img_s"]
        log("validation")
        result["val_img_s"] = ours.validation_img_s(repeats)
        result["baseline_val_img_s"] = base.validation_img_s(repeats)
        log("data pipeline")
        result["data_img_s"] = ours.data_img_s(iterations, repeats)
        result["baseline_data_img_s"] = base.data_img_s(iterations, repeats)

        log("inference")
        height, width = (int(s) for s in ours.parser["spatial_size"])
        eager = base.network()
        fast = accelerate(ours.network(), dev)
        fast.load_state_dict(eager.state_dict())  # the same weights for the equality check
        channels = int(ours.parser["in_channels"])
        x1 = torch.rand(1, channels, height, width, device=dev)
        x32 = torch.rand(32, channels, height, width, device=dev)
        with torch.inference_mode():
            result["infer_max_abs_diff"] = _max_abs_difference(fast(x1), eager(x1))
        result["infer_path"] = type(fast).__name__
        result["baseline_infer_latency_ms_bs1"] = 1000 * _inference_seconds(eager, x1, infer_repeats)
        result["infer_latency_ms_bs1"] = 1000 * _inference_seconds(fast, x1, infer_repeats)
        result["infer_speedup"] = result["baseline_infer_latency_ms_bs1"] / result["infer_latency_ms_bs1"]
        result["infer_img_s_bs32"] = 32 / _inference_seconds(fast, x32, max(2, infer_repeats // 4))
        if modes:
            result["train_modes"] = train_modes(
                config, data, dev, scratch, mode_sizes, modes, iterations, repeats, common, log
            )

    for prefix in ("", "baseline_"):
        epoch = (
            BUSI_TRAIN_IMAGES / result[f"{prefix}train_img_s"] + BUSI_VALIDATION_IMAGES / result[f"{prefix}val_img_s"]
        )
        result[f"{prefix}epoch_s"] = epoch
        result[f"{prefix}protocol_min"] = PROTOCOL_FOLDS * PROTOCOL_EPOCHS * epoch / 60
    result["protocol_note"] = (
        f"extrapolated, not run: {PROTOCOL_FOLDS} folds x {PROTOCOL_EPOCHS} epochs of {BUSI_TRAIN_IMAGES} training"
        f" + {BUSI_VALIDATION_IMAGES} validation images at the measured rates, one fold after the other"
    )
    if dev.type == "cuda":
        result["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        result["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    result["settings"] = settings
    result["overrides"] = common
    result["baseline"] = BASELINE
    result["iterations"], result["repeats"], result["infer_repeats"] = iterations, repeats, infer_repeats
    result["data"] = "synthetic demo dataset" if data is None or "demo" in Path(data).name else str(data)
    result.update(_versions(dev))
    return result
