"""The benchmark's report: :func:`custom.workflows.benchmark.benchmark` run from the command line, its figures
printed as Markdown tables (ours, the baseline, the speed-up) and written as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from custom.cli import run as run_command
from custom.cli import whole_numbers
from custom.fileio import atomic_write_json
from custom.workflows.benchmark import DEFAULT_CONFIG, benchmark

__all__ = ["TABLE_ROWS", "benchmark_command", "format_table", "main"]

TABLE_ROWS = [
    ("training images/s", "train_img_s", "baseline_train_img_s", "train_speedup"),
    ("validation images/s", "val_img_s", "baseline_val_img_s", None),
    ("data pipeline images/s", "data_img_s", "baseline_data_img_s", None),
    ("BUSI-sized epoch, s", "epoch_s", "baseline_epoch_s", None),
    ("5 x 800 protocol, min (extrapolated)", "protocol_min", "baseline_protocol_min", None),
    ("inference latency bs1, ms", "infer_latency_ms_bs1", "baseline_infer_latency_ms_bs1", "infer_speedup"),
    ("inference images/s bs32", "infer_img_s_bs32", None, None),
]


def format_table(result: Mapping[str, Any]) -> str:
    """The figures of :func:`benchmark` as a Markdown table (ours, baseline, speed-up)."""
    lines = ["| measure | ours | baseline | speed-up |", "|---|---:|---:|---:|"]
    for label, ours, base, speedup in TABLE_ROWS:
        cells = [
            f"{result[ours]:.1f}",
            f"{result[base]:.1f}" if base else "",
            f"{result[speedup]:.2f}x" if speedup else "",
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(f"| peak memory, MB | {result['peak_mem_mb']:.0f} | | |")
    modes = result.get("train_modes")
    if modes:
        lines += [
            "",
            f"training modes (images/s; default on this device: {modes['default_mode']})",
            "",
            "| size | mode | images/s | vs fp32 | warm-up epoch, s |",
            "|---|---|---:|---:|---:|",
        ]
        for size, row in modes.items():
            if size == "default_mode":
                continue
            for mode, f in row.items():
                ratio = f"{f['speedup_vs_fp32']:.2f}x" if "speedup_vs_fp32" in f else ""
                lines.append(f"| {size} | {mode} | {f['img_s']:.2f} | {ratio} | {f['warmup_s']:.1f} |")
    return "\n".join(lines)


def benchmark_command(
    device: str = "cpu",
    data: str | None = None,
    out: str | None = None,
    config: Any = DEFAULT_CONFIG,
    iterations: int = 10,
    repeats: int = 3,
    infer_repeats: int = 10,
    modes: Any = (),
    mode_sizes: Any = (128, 256),
    **overrides: Any,
) -> None:
    """Measures the bundle's training and inference speed against a plain baseline pipeline, in one run.

    ``python scripts/benchmark.py --device cpu --out bench_cpu.json``; ``--device cuda --data data/busi``;
    ``--iterations 2 --repeats 1 --spatial_size [64,64]`` is a quick check; ``--modes
    fp32,bf16,bf16_channels_last,fp32_channels_last,fp32_compile --mode_sizes 128,256`` times the training
    precision and layout modes side by side. Prints a table and the JSON of :func:`benchmark` (and with
    ``out`` writes it). Without ``data`` it runs on the synthetic demo dataset. Any other ``--key value``
    is a bundle override applied to both pipelines (``--batch_size``, ``--compile True``, ``--gpu_augment True``).
    """
    modes = modes.split(",") if isinstance(modes, str) else list(modes)
    sizes = whole_numbers(mode_sizes, "mode_sizes")
    result = benchmark(
        device, data, config, iterations, repeats, infer_repeats, overrides, modes=modes, mode_sizes=sizes
    )
    print(format_table(result))
    print(json.dumps(result, indent=2, default=str))
    if out:
        atomic_write_json(out, result)


def main() -> None:
    """``nunet-benchmark`` and ``scripts/benchmark.py``: :func:`benchmark_command` on the command line."""
    run_command(benchmark_command)
