"""Train, evaluate and infer on the synthetic demo data with the bundle's own commands.

Usage: ``python scripts/demo.py [--out runs/demo] [--epochs 5] [--size 128]``

Each step is a ``python -m monai.bundle run`` command, printed before it runs so it can be reused.
The demo data (BUSI layout, synthetic) is generated on first use under ``bundle/data/demo``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import fire

REPO = Path(__file__).resolve().parents[1]
CONFIGS = "bundle/configs"


def _run(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "monai.bundle", "run", *args]
    print("\n$ python -m monai.bundle run " + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def main(out: str = "runs/demo", epochs: int = 5, size: int = 128, batch_size: int = 6) -> None:
    """Runs training, evaluation on the test split and inference on the demo test images.

    Args:
        out: run folder (relative to the repository root).
        epochs: training epochs (the paper trains 800; a few show the pipeline working).
        size: network input side; 128 instead of the paper's 256 keeps a CPU run to minutes.
        batch_size: training batch size.
    """
    start = time.perf_counter()
    common = ["--output_dir", out, "--spatial_size", f"[{size},{size}]"]
    train = ["--epochs", str(epochs), "--batch_size", str(batch_size)]
    _run(["training", "--config_file", f"{CONFIGS}/train.json", *train, *common])
    _run(["evaluating", "--config_file", f"['{CONFIGS}/train.json','{CONFIGS}/evaluate.json']", *common])
    _run(["run", "--config_file", f"{CONFIGS}/inference.json", "--ckpt_path", f"{out}/model.pt",
          "--output_dir", f"{out}/predictions", "--spatial_size", f"[{size},{size}]"])
    print(
        f"\nDone in {time.perf_counter() - start:.0f} s. Outputs in {out}/:\n"
        "  model.pt               best checkpoint (validation split)\n"
        "  train_log.jsonl        one line per epoch; tensorboard/ for TensorBoard\n"
        "  metrics.json           test-split metrics; per_image.csv one row per test image\n"
        "  predictions/           <name>_seg.png mask and <name>.json class decision per image"
    )


if __name__ == "__main__":
    fire.Fire(main)
