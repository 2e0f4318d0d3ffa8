"""The N-Unet paper's ablations (Tables 7 and 8) as cross-validation runs of bundle overrides, in one table.

N-Unet: Yang & Zhu, "N-Unet: An Efficient Multi-Task Model for Precise Classification and Segmentation
of Breast Ultrasound Images", J. Imaging 2026, 12(5), 194, section 4.8.

Table 7 crosses four modules, each on or off: A (AMTL, the loss of section 3.5), C (CSB, section
3.4), AF (AFF, section 3.2) and CL (CLAE, section 3.3): 16 variants, from the plain multi-task U-Net
("Unet") to N-Unet ("A+C+AF+CL"). Table 8 compares N-Unet with its single-task counterparts
(N-Unet-Cls without the decoder, N-Unet-Seg without the classification head).

"Without A" is what the paper's section 4.8 describes A as replacing: the task losses without
focal modulation or class weights (cross-entropy on the two class logits, which equals binary
cross-entropy on their difference) plus Dice, summed with fixed equal weights (eq. 22), no learned
uncertainty and no task-number normalisation. Each variant is a set of bundle overrides on the
training config, so it runs through :func:`custom.workflows.crossval.cross_validate` like any other run.

Stage: input a prepared data folder; output ``<out>/<variant>/`` (a cross-validation run each) and
``<out>/ablation.json`` / ``ablation.md`` (every variant's mean ± std over folds).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from custom.cli import run as run_command
from custom.cli import whole_numbers
from custom.errors import InputError
from custom.fileio import atomic_write_json, atomic_write_text
from custom.workflows.crossval import DEFAULT_CONFIG, cross_validate

MODULES = ("A", "C", "AF", "CL")
# the loss of the "without A" rows: focal modulation and class weights off, fixed equal task weights
WITHOUT_AMTL = {
    "loss#learn_weights": False,
    "loss#task_losses#cls#gamma": 0.0,
    "loss#task_losses#cls#class_weights": None,
}
COLUMNS = (
    ("classification", "accuracy"),
    ("classification", "auc"),
    ("segmentation", "dice"),
    ("segmentation", "iou"),
    ("segmentation", "hd95"),
)


def _modules_overrides(on: set[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "csb_mode": "hard" if "C" in on else "off",
        "network_def#aff": "AF" in on,
        "network_def#clae": "CL" in on,
    }
    return overrides if "A" in on else {**overrides, **WITHOUT_AMTL}


def table7() -> dict[str, dict[str, Any]]:
    """The 16 variants of Table 7 by name (``"Unet"``, ``"A"``, ..., ``"A+C+AF+CL"``), as bundle overrides."""
    variants = {}
    for flags in itertools.product((False, True), repeat=len(MODULES)):
        on = {m for m, f in zip(MODULES, flags) if f}
        variants["+".join(m for m in MODULES if m in on) or "Unet"] = _modules_overrides(on)
    return dict(sorted(variants.items(), key=lambda kv: (kv[0] != "Unet", kv[0].count("+"), kv[0])))


def table8() -> dict[str, dict[str, Any]]:
    """Table 8's single-task counterparts of N-Unet (N-Unet itself is Table 7's ``"A+C+AF+CL"``)."""
    full = _modules_overrides(set(MODULES))
    return {"N-Unet-Cls": {**full, "network_def#task": "cls"}, "N-Unet-Seg": {**full, "network_def#task": "seg"}}


def variants(names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """The chosen variants of both tables (all when ``names`` is None); an unknown name is an InputError."""
    known = {**table7(), **table8()}
    if names is None:
        return known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(known)}.")
    return {n: known[n] for n in names}


def ablate(
    data: str,
    out: str,
    names: Sequence[str] | None = None,
    folds: Sequence[int] | None = None,
    config: str | Sequence[str] = DEFAULT_CONFIG,
    overrides: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
    **cross_validate_options: Any,
) -> dict:
    """Cross-validates every chosen variant into ``<out>/<variant>`` and writes the ablation table.

    Args:
        data: prepared data folder.
        out: folder of the variants' runs and of ``ablation.json`` / ``ablation.md``.
        names: variants (default: Table 7 and Table 8, 18 runs; ``"A+C+AF+CL"`` is N-Unet in both).
        folds, config: as for :func:`custom.workflows.crossval.cross_validate`.
        overrides: bundle overrides shared by every variant (``epochs``, ``spatial_size``, ...); a
            variant's own keys win.
        cross_validate_options: further arguments of ``cross_validate`` (``resume``, ``calibrate``, ...).
    """
    chosen = variants(names)
    table = {}
    for name, variant in chosen.items():
        log(f"[ablation] {name}")
        summary = cross_validate(
            data,
            str(Path(out) / name),
            folds=folds,
            config=config,
            overrides={**dict(overrides or {}), **variant},
            log=log,
            **cross_validate_options,
        )
        table[name] = {
            "overrides": variant,
            **{f"{section}/{metric}": _mean_std(summary, section, metric) for section, metric in COLUMNS},
        }
    result = {"variants": table, "convention": "mean ± std over folds; " + _segmentation_convention(summary)}
    atomic_write_json(Path(out) / "ablation.json", result)
    atomic_write_text(Path(out) / "ablation.md", ablation_markdown(result))
    return result


# options of ``ablate_command`` passed on to cross_validate rather than to the bundle
CROSS_VALIDATE_OPTIONS = ("resume", "calibrate", "parallel", "protocol")


def _names(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)


def _print_variants(names: Sequence[str] | None) -> None:
    for name, variant in variants(names).items():
        print(f"{name}: {json.dumps(variant)}")


def ablate_command(
    data: str = "",
    out: str = "",
    variants: Any = None,
    folds: Any = None,
    config: Any = DEFAULT_CONFIG,
    list_variants: bool = False,
    **overrides: Any,
) -> None:
    """Runs the chosen ablation variants (default: all 18) by cross-validation and writes the ablation table.

    ``python scripts/ablate.py --data <prepared dir> --out runs/<name> [--variants Unet,A,A+C+AF+CL,N-Unet-Seg]
    [--folds 0,1,2,3,4] [--config bundle/configs/train.json] [--resume] [--calibrate] [any bundle override]``;
    ``--list_variants`` prints every variant and its bundle overrides (``A+C+AF+CL`` is N-Unet). Each variant
    is a cross-validation run in ``<out>/<variant>`` (see ``scripts/cross_validate.py``); the table of every
    variant's mean ± std is written to ``<out>/ablation.md`` and ``ablation.json``.
    """
    names = _names(variants)
    if list_variants:
        _print_variants(names)
        return
    if not data or not out:
        raise InputError("--data and --out are required (or --list_variants).")
    options = {k: overrides.pop(k) for k in CROSS_VALIDATE_OPTIONS if k in overrides}
    result = ablate(
        data, out, names, folds=whole_numbers(folds, "folds"), config=config, overrides=overrides, **options
    )
    print(f"ablation of {len(result['variants'])} variants: {out}/ablation.md")


def main() -> None:
    """``nunet-ablate`` and ``scripts/ablate.py``: :func:`ablate_command` on the command line."""
    run_command(ablate_command)


def _mean_std(summary: Mapping, section: str, metric: str) -> list[float] | None:
    mean = summary.get("mean", {}).get(section, {}).get(metric)
    return None if mean is None else [mean, summary["std"][section][metric]]


def _segmentation_convention(summary: Mapping) -> str:
    return str(summary.get("conventions", {}).get("segmentation", ""))


def ablation_markdown(result: Mapping) -> str:
    """The ablation as one Markdown table: a row per variant, mean ± std of each column."""
    header = ["variant", *(f"{metric}" for _, metric in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in result["variants"].items():
        cells = [_cell(row[f"{section}/{metric}"]) for section, metric in COLUMNS]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(["# Ablation", "", *lines, "", f"*{result['convention']}*", ""])


def _cell(value: list[float] | None) -> str:
    if value is None or value[0] != value[0]:
        return "n/a"
    return f"{value[0]:.4f} ± {value[1]:.4f}"
