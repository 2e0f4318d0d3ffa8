"""Merging prepared datasets: fold k with fold k, each record keeping its dataset, groups whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_script

from custom.data.merge import merge_prepared
from custom.errors import InputError


def _prepared(root: Path, name: str, ids: list[str], extra: dict | None = None) -> Path:
    """A minimal prepared folder: one image and mask file per id, two folds by rotation."""
    folder = root / name
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    records = []
    for i, rid in enumerate(ids):
        for sub in ("images", "labels"):
            (folder / sub / f"{rid}.png").write_bytes(f"{name}-{sub}-{rid}".encode())
        records.append(
            {
                "id": rid,
                "image": f"images/{rid}.png",
                "label": f"labels/{rid}.png",
                "class_name": "benign" if i % 2 else "normal",
                "class": i % 2,
                "lesion": i % 2,
                "group": i // 2,
                **(extra or {}),
            }
        )
    half = len(records) // 2
    for k, (train, test) in enumerate([(records[:half], records[half:]), (records[half:], records[:half])]):
        content = {"name": name.upper(), "classes": {"normal": 0, "benign": 1}, "size_thresholds": {"alpha": k}}
        content.update(training=train, validation=test[:1], test=test[1:])
        (folder / f"fold{k}.json").write_text(json.dumps(content))
    (folder / "summary.json").write_text(json.dumps({"dataset": name.upper()}))
    return folder


def test_merged_folds_are_the_union_of_the_inputs_folds(tmp_path):
    a = _prepared(tmp_path, "busi", ["x", "y", "z", "w"])
    b = _prepared(tmp_path, "bus-uclm", ["x", "q"], extra={"patient": "P1"})
    summary = merge_prepared([str(a), str(b)], str(tmp_path / "merged"))
    assert summary["records"] == 6 and set(summary["datasets"]) == {"busi", "bus_uclm"}
    assert summary["dropped_fields"] == ["patient"]  # one dataset's field would break a mixed batch
    for k in range(2):
        merged = json.loads((tmp_path / "merged" / f"fold{k}.json").read_text())
        for split in ("training", "validation", "test"):
            expected = {
                f"{key}_{r['id']}"
                for key, folder in (("busi", a), ("bus_uclm", b))
                for r in json.loads((folder / f"fold{k}.json").read_text())[split]
            }
            assert {r["id"] for r in merged[split]} == expected
        records = merged["training"] + merged["validation"] + merged["test"]
        assert all(set(r) == set(records[0]) for r in records)
        # the same id in two datasets stays two cases, each pointing at its own file
        same = {r["dataset"]: r for r in records if r["id"].endswith("_x")}
        assert (tmp_path / "merged" / same["busi"]["image"]).read_bytes() == b"busi-images-x"
        assert (tmp_path / "merged" / same["bus_uclm"]["image"]).read_bytes() == b"bus-uclm-images-x"
        assert len({r["group"] for r in records}) == len({(r["dataset"], r["group"]) for r in records})
    # the dataset name stays a name when MONAI loads the datalist (a folder of that name would make it a path)
    from custom.data import load_datalist

    loaded = load_datalist(str(tmp_path / "merged" / "fold0.json"), "training", check_images=False)
    assert {r["dataset"] for r in loaded} == {"busi", "bus_uclm"}


def test_merge_refuses_inputs_that_cannot_be_joined(tmp_path):
    a = _prepared(tmp_path, "busi", ["x", "y", "z", "w"])
    with pytest.raises(InputError, match="two or more"):
        merge_prepared([str(a)], str(tmp_path / "merged"))
    with pytest.raises(InputError, match="same dataset name"):
        merge_prepared([str(a), str(a)], str(tmp_path / "merged"))
    (tmp_path / "other").mkdir()
    proc = run_script("prepare_data.py", "merge", "--inputs", f"{a},{tmp_path / 'other'}", "--out", str(tmp_path / "m"))
    assert proc.returncode == 1 and "summary.json" in proc.stderr and "Traceback" not in proc.stderr
