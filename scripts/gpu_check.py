"""The prepared GPU check: benchmark, then fold 0 trained briefly with every speed switch and in fp32.

    python scripts/gpu_check.py --data data/busi --out gpu_check [--epochs 3]   # on a CUDA machine, under 8 minutes
    python scripts/gpu_check.py --dry True --out /tmp/gpu_check                 # the CPU rehearsal (demo data, 32x32)

Writes ``<out>/gpu_check.json`` (see custom/workflows/gpu_check.py) and prints the headline figures.
"""

from __future__ import annotations

from custom.cli import run as run_command
from custom.workflows.gpu_check import gpu_check


def main(
    out: str = "gpu_check", data: str | None = None, device: str = "cuda", epochs: int = 3, dry: bool = False
) -> None:
    result = gpu_check(out, data=data, device=device, epochs=epochs, dry=dry)
    bench = result["benchmark"]
    print(
        f"{result['device']}: training {bench['train_img_s']:.1f} img/s ({bench['train_speedup']:.2f}x the baseline), "
        f"inference speed-up {bench['infer_speedup']:.2f}; short training with the speed switches "
        f"{result['speedup']:.2f}x fp32; total {result['total_s']:.0f} s -> {out}/gpu_check.json"
    )


if __name__ == "__main__":
    run_command(main)
