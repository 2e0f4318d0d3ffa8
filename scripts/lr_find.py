"""A learning-rate range test (MONAI's LearningRateFinder) on a training config and its data.

    python scripts/lr_find.py --data data/busi_uclm [--fold 0] \
        [--config "['bundle/configs/train.json','bundle/configs/recipes/cpu_v2.json']"] \
        [--num_iter 100] [--start_lr 1e-6] [--end_lr 1e-1] [--out runs/lr_range] [any bundle override]

Prints the steepest-descent rate and the minimum-loss rate; writes lr_range.json and lr_range.png.
"""

from __future__ import annotations

from custom.cli import run as run_command
from custom.workflows.lr_range import lr_range_test

DEFAULT_CONFIG = ["bundle/configs/train.json", "bundle/configs/recipes/cpu_v2.json"]


def main(
    data: str,
    fold: int = 0,
    config: str | list = tuple(DEFAULT_CONFIG),
    num_iter: int = 100,
    start_lr: float = 1e-6,
    end_lr: float = 1e-1,
    out: str = "runs/lr_range",
    **overrides,
) -> None:
    """Sweeps the learning rate over ``num_iter`` training batches of ``data``'s fold ``fold``."""
    configs = [config] if isinstance(config, str) else list(config)  # fire reads "['a','b']" as a list
    result = lr_range_test(
        list(configs), {"dataset_dir": data, "fold": fold, **overrides}, start_lr, end_lr, num_iter, out
    )
    print(f"steepest descent at lr {result['steepest_lr']:.2e}; lowest loss at lr {result['min_loss_lr']:.2e}")
    print(f"curve: {out}/lr_range.json, {out}/lr_range.png")


if __name__ == "__main__":
    run_command(main)
