"""A learning-rate range test on the bundle's own network, loss, optimiser and training batches.

L. N. Smith, "Cyclical learning rates for training neural networks", WACV 2017: train for a few
hundred iterations while the learning rate grows exponentially, and read off where the loss falls
fastest. MONAI's ``LearningRateFinder`` does the test; this module feeds it what a training config
builds (``network``, ``loss_fn``, ``optimizer``, ``train#dataloader``, ``train#trainer#prepare_batch``),
so the rate is searched for exactly the recipe it will be used with. The network's and the
optimiser's state are restored afterwards (the finder's ``auto_reset``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.optimizers import LearningRateFinder

from custom.cli import run as run_command
from custom.configs import bundle_parser
from custom.errors import InputError
from custom.fileio import atomic_write_json

__all__ = ["lr_find_command", "lr_range_test", "main"]


def lr_range_test(
    config_files: Sequence[str],
    overrides: Mapping[str, Any] | None = None,
    start_lr: float = 1e-6,
    end_lr: float = 1e-1,
    num_iter: int = 100,
    out: str | None = None,
) -> dict[str, Any]:
    """Runs the range test and returns ``{"lrs", "losses", "steepest_lr", "min_loss_lr", ...}``.

    ``steepest_lr`` is where the smoothed loss falls fastest (the finder's steepest gradient, the first
    and last tenth of the curve skipped); ``min_loss_lr`` / 10 is the other usual reading. With ``out``
    the curve goes to ``<out>/lr_range.json`` and ``<out>/lr_range.png``.

    Args:
        config_files: the training configs, merged in order (e.g. train.json and a recipe).
        overrides: bundle overrides (``{"dataset_dir": ..., "spatial_size": [96, 96]}``).
        start_lr, end_lr: the range, swept exponentially.
        num_iter: iterations of the sweep (one batch each).
        out: a folder for the curve, or None.
    """
    if not 0 < start_lr < end_lr:
        raise InputError(f"--start_lr {start_lr} / --end_lr {end_lr}: expected 0 < start_lr < end_lr.")
    if int(num_iter) < 10:
        raise InputError(f"--num_iter {num_iter}: the curve needs at least 10 iterations.")
    parser = bundle_parser(config_files, overrides)
    parser.get_parsed_content("initialize")  # the config's own checks and seeds
    device = parser.get_parsed_content("device")
    prepare = parser.get_parsed_content("train#trainer#prepare_batch")
    finder = LearningRateFinder(
        parser.get_parsed_content("network"),
        parser.get_parsed_content("optimizer"),
        parser.get_parsed_content("loss_fn"),
        device=device,
        verbose=False,
    )
    finder.range_test(
        parser.get_parsed_content("train#dataloader"),
        image_extractor=lambda batch: prepare(batch, device)[0],
        label_extractor=lambda batch: prepare(batch, device)[1],
        start_lr=start_lr,
        end_lr=end_lr,
        num_iter=int(num_iter),
    )
    lrs, losses = finder.get_lrs_and_losses()
    skip = max(1, len(lrs) // 10)
    steepest, _ = finder.get_steepest_gradient(skip_start=skip, skip_end=skip)
    finite = [(loss, lr) for lr, loss in zip(lrs, losses) if math.isfinite(loss)]
    result = {
        "lrs": list(map(float, lrs)),
        "losses": list(map(float, losses)),
        "steepest_lr": None if steepest is None else float(steepest),
        "min_loss_lr": float(min(finite)[1]) if finite else None,
        "iterations": len(lrs),
        "reading": "steepest_lr: fastest fall of the smoothed loss; min_loss_lr / 10: the conservative reading",
    }
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "lr_range.json", result)
        _plot(result, folder / "lr_range.png")
    return result


def _plot(result: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(result["lrs"], result["losses"])
    for key, style in (("steepest_lr", "--"), ("min_loss_lr", ":")):
        if result[key] is not None:
            ax.axvline(result[key], linestyle=style, color="grey", label=f"{key} {result[key]:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# the recipe the range test was made for (docs/training.md)
DEFAULT_CONFIGS = ("bundle/configs/train.json", "bundle/configs/recipe_cpu_v2.json")


def lr_find_command(
    data: str,
    fold: int = 0,
    config: str | list = DEFAULT_CONFIGS,
    num_iter: int = 100,
    start_lr: float = 1e-6,
    end_lr: float = 1e-1,
    out: str = "runs/lr_range",
    **overrides: Any,
) -> None:
    """A learning-rate range test (MONAI's LearningRateFinder) over ``num_iter`` training batches of ``data``'s fold.

    ``python scripts/lr_find.py --data data/busi_uclm [--fold 0]
    [--config "['bundle/configs/train.json','bundle/configs/recipe_cpu_v2.json']"] [--num_iter 100]
    [--start_lr 1e-6] [--end_lr 1e-1] [--out runs/lr_range] [any bundle override]``: prints the
    steepest-descent rate and the minimum-loss rate; writes lr_range.json and lr_range.png.
    """
    configs = [config] if isinstance(config, str) else list(config)  # fire reads "['a','b']" as a list
    result = lr_range_test(configs, {"dataset_dir": data, "fold": fold, **overrides}, start_lr, end_lr, num_iter, out)
    print(f"steepest descent at lr {result['steepest_lr']:.2e}; lowest loss at lr {result['min_loss_lr']:.2e}")
    print(f"curve: {out}/lr_range.json, {out}/lr_range.png")


def main() -> None:
    """``nunet-lr-find`` and ``scripts/lr_find.py``: :func:`lr_find_command` on the command line."""
    run_command(lr_find_command)
