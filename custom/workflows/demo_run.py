"""The demo: train, evaluate and infer on the synthetic demo data with the bundle's commands, then the released model.

Each step is a ``python -m monai.bundle run`` command, printed before it runs so it can be reused: a
short training with the CPU budget recipe (``bundle/configs/recipe_cpu_budget.json``) on the synthetic
demo data (generated on first use under ``bundle/data/demo``), its evaluation on the demo test split (the
Dice it prints shows that the short training learned the synthetic lesions), and inference on the same
test images with the released model (``bundle/models/model.pt``, trained on real BUSI images, run at the
input size recorded in its card). The commands run from the repository root, as the README writes them.
"""

from __future__ import annotations

import json
import time

from custom.cli import run as run_command
from custom.paths import REPO_ROOT
from custom.workflows.bundle_command import command_line, is_monai_notice, run_bundle

__all__ = ["demo_command", "main"]

CONFIGS = "bundle/configs"
RELEASED = "bundle/models/model.pt"


def _show(line: str) -> None:
    if not is_monai_notice(line):
        print(line)


def _run(args: list[str]) -> None:
    print("\n$ " + command_line(args), flush=True)
    run_bundle(args, on_line=_show, cwd=REPO_ROOT)


def demo_command(
    out: str = "runs/demo", epochs: int = 30, size: int = 64, batch_size: int = 4, learning_rate: float = 1e-3
) -> None:
    """Runs training, evaluation on the test split and inference with the released model.

    ``python scripts/demo.py [--out runs/demo] [--epochs 30] [--size 64]``

    Args:
        out: run folder (relative to the repository root).
        epochs: training epochs of the demo's own short training.
        size: network input side of the short training (the released model keeps its own).
        batch_size: training batch size; small batches give the 25 training images enough steps.
        learning_rate: peak learning rate of the recipe's warm-up and cosine schedule.
    """
    start = time.perf_counter()
    recipe = f"['{CONFIGS}/train.json','{CONFIGS}/recipe_cpu_budget.json']"
    common = ["--output_dir", out, "--spatial_size", f"[{size},{size}]"]
    train = ["--epochs", str(epochs), "--batch_size", str(batch_size), "--learning_rate", str(learning_rate)]
    _run(["training", "--config_file", recipe, *train, *common])
    evaluate = f"['{CONFIGS}/train.json','{CONFIGS}/recipe_cpu_budget.json','{CONFIGS}/evaluate.json']"
    _run(["evaluating", "--config_file", evaluate, *common])
    metrics = json.loads((REPO_ROOT / out / "metrics.json").read_text())
    seg, cls = metrics.get("segmentation", {}), metrics.get("classification", {})
    print(
        f"\nshort training, demo test split ({metrics['n_images']} images, original size): "
        f"Dice {seg.get('dice', float('nan')):.3f} on lesion images, "
        f"lesion-vs-normal accuracy {cls.get('accuracy', float('nan')):.3f}"
    )
    model = RELEASED if (REPO_ROOT / RELEASED).is_file() else f"{out}/model.pt"
    if model != RELEASED:
        print(f"no released model at {RELEASED}: inferring with the demo's own {model}")
    # no workflow name: MONAI runs "run", and the README's inference command names none
    _run(["--config_file", f"{CONFIGS}/inference.json", "--ckpt_path", model, "--output_dir", f"{out}/predictions"])
    print(
        f"\nDone in {time.perf_counter() - start:.0f} s. Outputs in {out}/:\n"
        "  model.pt               the short training's best checkpoint (validation split)\n"
        "  train_log.jsonl        one line per epoch; tensorboard/ for TensorBoard\n"
        "  metrics.json           test-split metrics; per_image.csv one row per test image\n"
        f"  predictions/           masks (<name>_seg.png) and decisions (<name>.json) of {model}"
    )


def main() -> None:
    """``nunet-demo`` and ``scripts/demo.py``: :func:`demo_command` on the command line."""
    run_command(demo_command)
