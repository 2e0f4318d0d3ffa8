"""Bad input stops a bundle run with one line naming the file or key, not a traceback from inside MONAI."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import CONFIGS, run_bundle
from PIL import Image

TINY = ["--epochs", "1", "--spatial_size", "[32,32]", "--batch_size", "2", "--num_workers", "0"]


def _train(*args: str, in_process: bool = True):
    return run_bundle(
        "training", "--config_file", str(CONFIGS / "train.json"), *TINY, *args, check=False, in_process=in_process
    )


def _assert_one_line_error(proc, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
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


def test_a_missing_dataset_folder_is_named(tmp_path):
    missing = tmp_path / "no_such_dataset"
    proc = _train("--dataset_dir", str(missing), "--output_dir", str(tmp_path / "out"))
    _assert_one_line_error(proc, str(missing), "fold0.json")


def test_a_dataset_folder_given_as_the_datalist_says_which_option_takes_it(demo_dir, tmp_path):
    proc = _train("--datalist", str(demo_dir), "--output_dir", str(tmp_path / "out"))
    _assert_one_line_error(proc, f"datalist '{demo_dir}' is a folder: pass --dataset_dir {demo_dir} or --datalist")


def test_an_image_whose_mask_is_missing_is_named(broken_copy, tmp_path):
    record = _first_training_record(broken_copy)
    (broken_copy / record["label"]).unlink()
    _assert_one_line_error(
        _train("--dataset_dir", str(broken_copy), "--output_dir", str(tmp_path / "out")),
        record["id"],
        "mask",
        "does not exist",
    )


@pytest.mark.parametrize("content", [b"", b"this is not a png", None], ids=["zero-byte", "text", "truncated"])
def test_an_unreadable_image_is_named(broken_copy, tmp_path, content):
    record = _first_training_record(broken_copy)
    image = broken_copy / record["image"]
    image.write_bytes(content if content is not None else image.read_bytes()[:60])
    _assert_one_line_error(_train("--dataset_dir", str(broken_copy), "--output_dir", str(tmp_path / "out")), image.name)


def test_a_malformed_datalist_is_named_in_a_new_interpreter_too(broken_copy, tmp_path):
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
    ids=[
        "split-not-a-list",
        "empty-split",
        "record-not-an-object",
        "lesion-out-of-range",
        "class-out-of-range",
        "three-classes-without-class",
    ],
)
def test_a_datalist_breaking_the_schema_names_the_split_record_and_key(broken_copy, tmp_path, breakage, needles):
    datalist = json.loads((broken_copy / "fold0.json").read_text())
    breakage(datalist)
    (broken_copy / "fold0.json").write_text(json.dumps(datalist))
    extra = ["--num_classes", "3"] if "num_classes 3" in needles else []
    proc = _train("--dataset_dir", str(broken_copy), "--output_dir", str(tmp_path / "out"), *extra)
    _assert_one_line_error(proc, "fold0.json", *needles)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.pt"))


def test_three_classes_on_a_lesion_vs_normal_datalist_is_refused(broken_copy, tmp_path):
    """A normal/benign/malignant model trained where every lesion is class 1 ("benign") used to exit 0."""
    datalist = json.loads((broken_copy / "fold0.json").read_text())
    datalist["classes"] = {"normal": 0, "lesion": 1}  # what prepare_data.py folder writes without --labels
    for split in ("training", "validation", "test"):
        for record in datalist[split]:
            record["class"] = record["lesion"]
    (broken_copy / "fold0.json").write_text(json.dumps(datalist))
    proc = _train("--dataset_dir", str(broken_copy), "--output_dir", str(tmp_path / "out"), "--num_classes", "3")
    _assert_one_line_error(proc, "fold0.json", "has 2 classes (normal, lesion); --num_classes 3 needs normal, benign")


def test_an_unknown_csb_mode_lists_the_allowed_ones(demo_dir, tmp_path):
    _assert_one_line_error(
        _train("--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path / "out"), "--csb_mode", "sometimes"),
        "csb_mode",
        "sometimes",
        "hard",
    )


def test_a_missing_inference_input_folder_is_named(tmp_path):
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


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Broken and foreign checkpoints beside a good one of inference.json's network."""
    import pickle

    import torch
    from monai.bundle import ConfigParser

    from custom.networks import get_network

    root = tmp_path_factory.mktemp("checkpoints")
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser["classifier_input"] = "bottleneck"  # the head of weights without a card, not the released model's
    state = parser.get_parsed_content("network_def").state_dict()
    torch.save({"model": state}, root / "good.pt")
    good = (root / "good.pt").read_bytes()
    (root / "truncated.pt").write_bytes(good[: len(good) // 2])
    (root / "text.pt").write_text("not a checkpoint\n")
    (root / "pickle.pt").write_bytes(pickle.dumps(Exception("arbitrary object")))
    torch.save(get_network("unet", in_channels=3, num_classes=2).state_dict(), root / "unet.pt")
    torch.save(get_network("nunet", in_channels=3, num_classes=3).state_dict(), root / "three_classes.pt")
    torch.save({"network": state, "optimizer": {"state": {}, "param_groups": []}}, root / "checkpoint_epoch=3.pt")
    return root


CHECKPOINT_PROBLEMS = {
    "missing.pt": ("missing.pt", "does not exist"),
    "truncated.pt": ("truncated.pt", "not a readable PyTorch weights file"),
    "text.pt": ("text.pt", "not a readable PyTorch weights file"),
    "pickle.pt": ("pickle.pt", "not a readable PyTorch weights file"),
    "unet.pt": ("unet.pt", "weights of another network"),
    "three_classes.pt": ("three_classes.pt", "num_classes"),
}


@pytest.mark.parametrize("name", list(CHECKPOINT_PROBLEMS))
def test_checkpoint_problems_at_inference_and_export_are_one_line(name, checkpoints, tmp_path):
    from conftest import run_script

    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (40, 30), 90).save(images / "case.png")
    ckpt = str(checkpoints / name)
    inference = run_bundle("--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(images),
                           "--output_dir", str(tmp_path / "out"), "--ckpt_path", ckpt, "--spatial_size", "[32,32]",
                           check=False)  # fmt: skip
    export = run_script("export_onnx.py", "--ckpt", ckpt, "--out", str(tmp_path / "m.onnx"))
    for proc in (inference, export):
        _assert_one_line_error(proc, *CHECKPOINT_PROBLEMS[name])
        assert "weights_only" not in proc.stderr
    assert not (tmp_path / "out" / "case.json").exists() and not (tmp_path / "m.onnx").exists()


def test_a_training_checkpoint_gives_its_network_weights_to_inference(checkpoints, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (40, 30), 90).save(images / "case.png")
    run_bundle("--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(images),
               "--output_dir", str(tmp_path / "out"), "--ckpt_path", str(checkpoints / "checkpoint_epoch=3.pt"),
               "--spatial_size", "[32,32]")  # fmt: skip
    assert (tmp_path / "out" / "case.json").is_file()


def test_inputs_sharing_a_stem_and_a_255_character_name_get_their_own_outputs(checkpoints, tmp_path):
    """``a.png`` beside ``a.tif``: outputs ``a_png*`` and ``a_tif*``; the longest legal name gets outputs whose
    names fit the file system (its start and a hash, temporary files included)."""
    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (40, 30), 90).save(images / "a.png")
    Image.new("L", (50, 20), 90).save(images / "a.tif")
    long_stem = "x" * (255 - len(".png"))  # the longest input name the file system allows
    Image.new("L", (30, 30), 90).save(images / f"{long_stem}.png")
    out = tmp_path / "out"
    run_bundle("--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(images), "--output_dir", str(out),
               "--ckpt_path", str(checkpoints / "good.pt"), "--spatial_size", "[32,32]")  # fmt: skip
    assert Image.open(out / "a_png_seg.png").size == (40, 30) and Image.open(out / "a_tif_seg.png").size == (50, 20)
    assert json.loads((out / "a_tif.json").read_text())["image"].endswith("a.tif")
    (seg,) = out.glob("xxx*_seg.png")
    stem = seg.name.removesuffix("_seg.png")
    assert long_stem.startswith(stem.rsplit("_", 1)[0]) and (out / f"{stem}.json").is_file()
    assert (out / f"{stem}_overlay.png").is_file() and max(len(p.name) for p in out.iterdir()) <= 255
    assert not (out / "a_seg.png").exists()


def test_inference_inputs_take_every_image_format_skip_masks_and_name_what_they_skip(tmp_path, caplog):
    from custom.data.inputs import image_records

    for name in ("a.png", "a_mask.png", "a_mask_1.png", "breast_mask_study.png", "b.tif", "c.BMP", "d.jpeg"):
        Image.new("L", (8, 6), 100).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    with caplog.at_level("WARNING"):
        records = image_records(str(tmp_path))
    assert [r["image"].rsplit("/", 1)[1] for r in records] == [
        "a.png",
        "b.tif",
        "breast_mask_study.png",
        "c.BMP",
        "d.jpeg",
    ]
    assert "2 masks skipped (a_mask.png, a_mask_1.png)" in caplog.text
    assert "2 entries that are not images skipped (notes.txt, sub)" in caplog.text


def test_weights_without_a_card_run_at_the_size_their_training_run_recorded_and_other_sizes_are_flagged(
    checkpoints, tmp_path, caplog
):
    """A model trained at 32x32 used to be run at the default 256x256 when no model card was beside it."""
    from custom.checkpoints import TrainedModel

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(checkpoints / "good.pt", run / "model.pt")
    with caplog.at_level("WARNING"):
        assert TrainedModel(str(run / "model.pt"), [256, 256]).spatial_size == [256, 256]
    assert "no model card or training run records its input size; running at [256, 256]" in caplog.text
    runs = [{"resolved": {"spatial_size": [64, 64]}}, {"resolved": {"spatial_size": [32, 32]}}]  # resumed: the last
    (run / "provenance.json").write_text(json.dumps({"runs": runs}))
    trained = TrainedModel(str(run / "model.pt"), [256, 256])
    assert trained.spatial_size == [32, 32]
    # an explicit other size: used, with a warning (another size can be meant, the networks are fully
    # convolutional), where a forgotten recipe used to evaluate a 96x96 model at 256x256 silently
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert trained.input_size([32, 32]) == [32, 32] and not caplog.text
        assert trained.input_size([256, 256]) == [256, 256]
    assert "was trained at [32, 32] and is run at [256, 256] (--spatial_size)" in caplog.text
