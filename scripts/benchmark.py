"""Measures the bundle's training and inference speed against a plain baseline pipeline, in one run.

    python scripts/benchmark.py --device cpu --out bench_cpu.json
    python scripts/benchmark.py --device cuda --data data/busi --out bench_h100.json
    python scripts/benchmark.py --device cpu --iterations 2 --repeats 1 --spatial_size [64,64]   # quick check
    python scripts/benchmark.py --device cpu --modes fp32,bf16,bf16_channels_last,fp32_channels_last,fp32_compile \
        --mode_sizes 128,256 --iterations 2 --repeats 2      # training precision / layout modes side by side

Prints a table and writes the JSON (``train_img_s``, ``baseline_train_img_s``, ``train_speedup``,
``epoch_s``, ``protocol_min``, ``infer_latency_ms_bs1``, ``infer_speedup``, ``infer_img_s_bs32``,
``data_img_s``, ``peak_mem_mb``, versions, ...). Without ``--data`` it runs on the synthetic demo
dataset. Any other ``--key value`` is a bundle override applied to both pipelines (``--batch_size``,
``--compile True``, ``--gpu_augment True``, ...).
"""

from __future__ import annotations

import json

from custom.cli import run as run_command
from custom.cli import whole_numbers
from custom.fileio import atomic_write_json
from custom.workflows.benchmark import DEFAULT_CONFIG, benchmark, format_table


def main(
    device: str = "cpu",
    data: str | None = None,
    out: str | None = None,
    config=DEFAULT_CONFIG,
    iterations: int = 10,
    repeats: int = 3,
    infer_repeats: int = 10,
    modes=(),
    mode_sizes=(128, 256),
    **overrides,
) -> None:
    """Runs :func:`custom.workflows.benchmark.benchmark` and prints (and with ``out`` writes) the result."""
    modes = modes.split(",") if isinstance(modes, str) else list(modes)
    sizes = whole_numbers(mode_sizes, "mode_sizes")
    result = benchmark(
        device, data, config, iterations, repeats, infer_repeats, overrides, modes=modes, mode_sizes=sizes
    )
    print(format_table(result))
    print(json.dumps(result, indent=2, default=str))
    if out:
        atomic_write_json(out, result)


if __name__ == "__main__":
    run_command(main)
