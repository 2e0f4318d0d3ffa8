"""Reading a run folder written by ``scripts/cross_validate.py``."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from custom.errors import InputError
from custom.fileio import read_json


@dataclass
class Run:
    """One cross-validation run: ``run.json``, ``summary.json`` and the ``fold<k>/`` outputs.

    Args:
        path: the run folder.
        label: the name the report gives it; default the run's own name (its folder's).
    """

    path: Path
    label: str | None = None
    meta: dict[str, Any] = field(init=False)
    summary: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: no such run folder; give the --out folder of scripts/cross_validate.py")
        self.meta = read_json(self.path / "run.json", "this is not a run folder of scripts/cross_validate.py")
        done = sorted(p.parent.name for p in self.path.glob("fold*/metrics.json"))
        self.summary = read_json(
            self.path / "summary.json",
            f"the run has not finished (folds evaluated: {', '.join(done) or 'none'}); finish it with "
            f"scripts/cross_validate.py --out {self.path} --resume True and the options it was started with",
        )
        missing = [k for k in ("data",) if k not in self.meta]
        if missing:
            raise InputError(
                f"{self.path / 'run.json'}: has no {', '.join(missing)!s}; it was not written by cross_validate.py"
            )

    @property
    def name(self) -> str:
        return self.label or str(self.meta.get("name") or self.path.name)

    @property
    def folds(self) -> list[int]:
        """The folds of the run, from ``run.json`` (else from ``summary.json``)."""
        folds = self.meta.get("folds") or self.summary.get("folds", {}).keys()
        return sorted(int(k) for k in folds)

    @property
    def data_dir(self) -> Path:
        return Path(self.meta["data"])

    def fold_dir(self, fold: int) -> Path:
        return self.path / f"fold{fold}"

    @cached_property
    def per_image(self) -> list[dict[str, Any]]:
        """Rows of every fold's ``per_image.csv`` with numbers parsed and a ``fold`` column added."""
        rows = []
        for fold in self.folds:
            csv_path = self.fold_dir(fold) / "per_image.csv"
            if not csv_path.is_file():
                continue
            with csv_path.open(newline="") as f:
                rows += [{**{k: _parse(v) for k, v in row.items()}, "fold": fold} for row in csv.DictReader(f)]
        return rows

    def train_log(self, fold: int) -> list[dict[str, Any]]:
        """The epoch records of ``fold<k>/train_log.jsonl`` (empty when the fold has none)."""
        log = self.fold_dir(fold) / "train_log.jsonl"
        if not log.is_file():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def test_record(self, fold: int, image_id: str) -> dict[str, Any]:
        """The test-split record ``image_id`` of ``fold<k>.json`` with absolute ``image``/``label`` paths."""
        datalist = json.loads((self.data_dir / f"fold{fold}.json").read_text())
        for record in datalist["test"]:
            if record["id"] == image_id:
                return {**record, **{k: str(self.data_dir / record[k]) for k in ("image", "label")}}
        raise KeyError(f"{image_id!r} is not in the test split of {self.data_dir / f'fold{fold}.json'}")


def _parse(value: str) -> Any:
    """A CSV cell as int or float when it is a number (empty cells and 'nan' become NaN), else the string."""
    if value in ("", "nan", "NaN"):
        return math.nan
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def lesion_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose ground truth contains a lesion and whose Dice is defined (N-Unet convention)."""
    return [r for r in rows if r.get("lesion") == 1 and is_number(r.get("dice"))]


def is_number(value: Any) -> bool:
    """True for a finite int or float (not a bool, not NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
