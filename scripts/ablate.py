"""The N-Unet paper's ablations (Table 7: AMTL x CSB x AFF x CLAE; Table 8: single-task variants) by cross-validation.

    python scripts/ablate.py --data <prepared dir> --out runs/<name> [--variants Unet,A,A+C+AF+CL,N-Unet-Seg]
        [--folds 0,1,2,3,4] [--config bundle/configs/train.json] [--resume] [--calibrate] [any bundle override]
    python scripts/ablate.py --list_variants

Each variant is a cross-validation run in ``<out>/<variant>`` (see scripts/cross_validate.py); the
table of every variant's mean ± std is written to ``<out>/ablation.md`` and ``ablation.json``.
Variants and their bundle overrides are defined in custom/workflows/ablation.py (``A+C+AF+CL`` is N-Unet).
"""

from __future__ import annotations

import json

from custom.cli import run as run_command
from custom.cli import whole_numbers
from custom.errors import InputError
from custom.workflows import ablation
from custom.workflows.crossval import DEFAULT_CONFIG

CROSS_VALIDATE_OPTIONS = ("resume", "calibrate", "parallel", "protocol")


def _list(value) -> list | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)


def main(
    data: str = "",
    out: str = "",
    variants=None,
    folds=None,
    config=DEFAULT_CONFIG,
    list_variants: bool = False,
    **overrides,
) -> None:
    """Runs the chosen variants (default: all 18) and writes the ablation table."""
    names = _list(variants)
    if list_variants:
        for name, variant in ablation.variants(names).items():
            print(f"{name}: {json.dumps(variant)}")
        return
    if not data or not out:
        raise InputError("--data and --out are required (or --list_variants).")
    options = {k: overrides.pop(k) for k in CROSS_VALIDATE_OPTIONS if k in overrides}
    result = ablation.ablate(
        data, out, names, folds=whole_numbers(folds, "folds"), config=config, overrides=overrides, **options
    )
    print(f"ablation of {len(result['variants'])} variants: {out}/ablation.md")


if __name__ == "__main__":
    run_command(main)
