"""Bad input stops a bundle run with one line naming the file or key, not a traceback from inside MONAI."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import CONFIGS, run_bundle

TINY = ["--epochs", "1", "--spatial_size", "[32,32]", "--batch_size", "2", "--num_workers", "0"]


def _train(*args: str, in_process: bool = True):
    return run_bundle(
        "training", "--config_file", str(CONFIGS / "train.json"), *TINY, *args, check=False, in_process=in_process
    )


def _assert_one_line_error(proc, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr[-3000:]
    for needle in needles:
        assert needle in last, last


@pytest.fixture()
def broken_copy(demo_dir, tmp_path):
    """A writable copy of the prepared demo dataset to break."""
    copy = tmp_path / "data"
    shutil.copytree(demo_dir, copy)
    return copy


def _first_training_record(data_dir):
    fold = json.loads((data_dir / "fold0.json").read_text())
    return fold["training"][0]


def test_missing_dataset_folder(tmp_path):
    missing = tmp_path / "no_such_dataset"
    proc = _train("--dataset_dir", str(missing), "--output_dir", str(tmp_path / "out"))
    _assert_one_line_error(proc, str(missing), "fold0.json")


def test_image_without_mask(broken_copy, tmp_path):
    record = _first_training_record(broken_copy)
    (broken_copy / record["label"]).unlink()
    _assert_one_line_error(
        _train("--dataset_dir", str(broken_copy), "--output_dir", str(tmp_path / "out")), record["id"], "mask", "does not exist"
    )


@pytest.mark.parametrize("content", [b"", b"this is not a png", None], ids=["zero-byte", "text", "truncated"])
def test_unreadable_image(broken_copy, tmp_path, content):
    record = _first_training_record(broken_copy)
    image = broken_copy / record["image"]
    image.write_bytes(content if content is not None else image.read_bytes()[:60])
    _assert_one_line_error(_train("--dataset_dir", str(broken_copy), "--output_dir", str(tmp_path / "out")), image.name)


def test_malformed_datalist(broken_copy, tmp_path):
    (broken_copy / "fold0.json").write_text("{not json")
    # in its own interpreter: the one-line hook as users meet it (the other cases run in this process)
    proc = _train("--dataset_dir", str(broken_copy), "--output_dir", str(tmp_path / "out"), in_process=False)
    _assert_one_line_error(proc, "fold0.json", "JSON")


def _record0(datalist: dict) -> dict:
    return datalist["training"][0]


@pytest.mark.parametrize(
    "breakage, needles",
    [
        (lambda d: d.update(training={"image": "x.png"}), ("training", "must be a list")),
        (lambda d: d.update(training=[]), ("training", "split is empty")),
        (lambda d: d["training"].insert(0, "images/x.png"), ("training, record 0", "must be an object")),
        (lambda d: _record0(d).update(lesion=2), ("'lesion' is 2", "allowed: 0, 1")),
        (lambda d: _record0(d).update({"class": 5}), ("'class' is 5", "allowed: 0, 1, 2")),
        (lambda d: _record0(d).pop("class"), ("no 'class'", "num_classes 3")),
    ],
    ids=["split-not-a-list", "empty-split", "record-not-an-object", "lesion-out-of-range", "class-out-of-range",
         "three-classes-without-class"],
)
def test_datalist_schema(broken_copy, tmp_path, breakage, needles):
    datalist = json.loads((broken_copy / "fold0.json").read_text())
    breakage(datalist)
    (broken_copy / "fold0.json").write_text(json.dumps(datalist))
    extra = ["--num_classes", "3"] if "num_classes 3" in needles else []
    proc = _train("--dataset_dir", str(broken_copy), "--output_dir", str(tmp_path / "out"), *extra)
    _assert_one_line_error(proc, "fold0.json", *needles)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.pt"))


def test_unknown_csb_mode(demo_dir, tmp_path):
    _assert_one_line_error(
        _train("--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path / "out"), "--csb_mode", "sometimes"),
        "csb_mode",
        "sometimes",
        "hard",
    )


def test_inference_on_missing_input_folder(tmp_path):
    proc = run_bundle(
        "run",
        "--config_file",
        str(CONFIGS / "inference.json"),
        "--input_dir",
        str(tmp_path / "nothing"),
        "--output_dir",
        str(tmp_path / "out"),
        check=False,
    )
    _assert_one_line_error(proc, "input_dir", "nothing")
