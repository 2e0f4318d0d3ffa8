"""Whole classes of the maintainers' hidden corpus, each closed for every member: output names, writers, cards, options.

Each test covers a class, not one example of it: every way two inputs can get one output name, every
tool that writes next to its own input, every field of a model card, every option that takes a list.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS
from generated import bundle_run, picture, save_untrained_checkpoint, write_dicom
from PIL import Image


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    return save_untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


# ---------------------------------------------------------------------------------------------------
# Output names
# ---------------------------------------------------------------------------------------------------


def test_no_two_inputs_of_a_run_share_an_output_name(tmp_path):
    """Every kind of collision: a generated name equal to another input's (frames, the extension kept for
    ``a.png`` beside ``a.tif``), one name in two folders, the same file twice, names differing in case only."""
    from custom.imageio import OUTPUT_STEM, with_output_stems

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "a.tif", "a_png.jpg", "c_frame0.png", "D.png"):
        Image.new("L", (8, 6)).save(folder / name)
    write_dicom(folder / "c.dcm", np.stack([picture()] * 2))
    other = tmp_path / "other"
    other.mkdir()
    Image.new("L", (8, 6)).save(other / "a_png.jpg")
    Image.new("L", (8, 6)).save(other / "d.png")
    records = [{"image": str(folder / n)} for n in ("a.png", "a.tif", "a_png.jpg", "c_frame0.png", "D.png")]
    records += [{"image": str(folder / "c.dcm"), "frame": k} for k in (0, 1)]
    records += [{"image": str(other / "a_png.jpg")}, {"image": str(other / "d.png")}, {"image": str(folder / "D.png")}]
    stems = [r[OUTPUT_STEM] for r in with_output_stems(records)]
    assert len({s.lower() for s in stems}) == len(stems), stems
    assert stems[1] == "a_tif" and stems[6] == "c_frame1"  # names without a collision keep the usual rule


@pytest.mark.slow
def test_inference_writes_one_result_per_input_when_names_collide(tmp_path, untrained):
    """A datalist naming ``a.png`` in two folders, and a DICOM cine loop beside a PNG named like its frame 0."""
    records = []
    for k, folder in enumerate(("left", "right")):
        (tmp_path / folder).mkdir()
        Image.fromarray(picture(k)).save(tmp_path / folder / "a.png")
        records.append({"id": f"{folder}/a", "image": f"{folder}/a.png"})
    write_dicom(tmp_path / "left" / "c.dcm", np.stack([picture(2)] * 2))
    Image.fromarray(picture(3)).save(tmp_path / "left" / "c_frame0.png")
    (tmp_path / "list.json").write_text(json.dumps({"test": records}))
    out = tmp_path / "out"
    bundle_run("run", "inference.json", datalist=str(tmp_path / "list.json"), dataset_dir=str(tmp_path),
               output_dir=str(out), ckpt_path=str(untrained), spatial_size=[32, 32])  # fmt: skip
    sources = sorted(json.loads(p.read_text())["image"] for p in out.glob("*.json"))
    assert sources == sorted(str(tmp_path / f / "a.png") for f in ("left", "right"))
    assert len(list(out.glob("*_seg.png"))) == 2
    images = tmp_path / "images"
    images.mkdir()
    write_dicom(images / "c.dcm", np.stack([picture(2)] * 2))
    Image.fromarray(picture(3)).save(images / "c_frame0.png")
    out = tmp_path / "out2"
    bundle_run("run", "inference.json", input_dir=str(images), dataset_dir=str(tmp_path), output_dir=str(out),
               ckpt_path=str(untrained), spatial_size=[32, 32])  # fmt: skip
    written = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted((Path(r["image"]).name, r.get("frame")) for r in written) == [
        ("c.dcm", 0),
        ("c.dcm", 1),
        ("c_frame0.png", None),
    ]
    assert len(list(out.glob("*_seg.png"))) == 3


# ---------------------------------------------------------------------------------------------------
# Tools that write over their own input or leave a broken file
# ---------------------------------------------------------------------------------------------------


def test_an_export_named_like_its_checkpoint_or_card_is_refused_and_the_weights_are_kept(tmp_path, untrained):
    from conftest import run_script

    weights = tmp_path / "model.pt"
    weights.write_bytes(untrained.read_bytes())
    (tmp_path / "model.json").write_text("{}")
    for out in (weights, tmp_path / "model.json", tmp_path / "link.pt"):
        if out.name == "link.pt":
            out.symlink_to(weights)
        result = run_script("export_onnx.py", "--ckpt", str(weights), "--out", str(out))
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith(f"error: --out {out}: is ") and "would replace" in result.stderr
    assert weights.read_bytes() == untrained.read_bytes() and (tmp_path / "model.json").read_text() == "{}"


def test_a_release_into_the_fold_it_is_made_from_is_refused_and_the_fold_is_kept(tmp_path):
    from custom.deploy.release import release_from_run
    from custom.errors import InputError

    fold = tmp_path / "run" / "fold0"
    fold.mkdir(parents=True)
    (tmp_path / "run" / "run.json").write_text("{}")
    (fold / "model.pt").write_bytes(b"the fold's weights")
    (fold / "metrics.json").write_text("{}")
    for out in (fold, tmp_path / "run" / "." / "fold0"):
        with pytest.raises(InputError, match="is the fold's weights .* would replace what it is made from"):
            release_from_run(tmp_path / "run", 0, out)
    assert (fold / "model.pt").read_bytes() == b"the fold's weights"


def _with_file_size_limit(limit: int, *command: str):
    """``command`` in a process that cannot write a file beyond ``limit`` bytes, as on a full disk."""
    import resource
    import signal
    import subprocess
    import sys

    from conftest import REPO

    def limit_writes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True,
                          preexec_fn=limit_writes, env=env)  # fmt: skip


@pytest.mark.slow
def test_an_export_on_a_full_disk_leaves_no_truncated_file(tmp_path, untrained):
    """ONNX export and the bundle archive: the write fails in one line and nothing half-written is left."""
    onnx = _with_file_size_limit(
        1 << 20, "scripts/export_onnx.py", "--ckpt", str(untrained), "--out", str(tmp_path / "m.onnx"),
        "--spatial_size", "[32,32]",
    )  # fmt: skip
    (tmp_path / "models").mkdir()
    archive = _with_file_size_limit(
        1 << 14, "scripts/export_bundle.py", "--out", str(tmp_path / "dist"), "--models_dir", str(tmp_path / "models")
    )
    for result, folder in ((onnx, tmp_path), (archive, tmp_path / "dist")):
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "cannot write it" in result.stderr
        assert not [p.name for p in folder.iterdir() if p.is_file()], list(folder.iterdir())


# ---------------------------------------------------------------------------------------------------
# Calibrating an interrupted cross-validation
# ---------------------------------------------------------------------------------------------------


def test_calibrating_a_fold_whose_training_was_interrupted_is_refused_naming_it(tmp_path, untrained):
    from custom.errors import InputError
    from custom.workflows.calibrate import calibrate_run

    run = tmp_path / "run"
    for k in (0, 1):
        (run / f"fold{k}").mkdir(parents=True)
        (run / f"fold{k}" / "model.pt").write_bytes(untrained.read_bytes())
    (run / "fold0" / "metrics.json").write_text("{}")  # fold 0 finished, fold 1 was stopped mid-training
    (run / "fold1" / "checkpoint_epoch=3.pt").write_bytes(untrained.read_bytes())
    (run / "run.json").write_text(json.dumps({"data": str(tmp_path), "config_files": [str(CONFIGS / "train.json")],
                                              "folds": [0, 1]}))  # fmt: skip
    with pytest.raises(InputError, match=r"fold1: fold 1 has not finished .* --resume True"):
        calibrate_run(str(run))
    assert not (run / "fold0" / "model.json").exists()  # nothing calibrated before the refusal


# ---------------------------------------------------------------------------------------------------
# Model cards and checkpoints
# ---------------------------------------------------------------------------------------------------


def _carded(folder: Path, untrained: Path, **fields) -> Path:
    """A copy of the untrained weights in ``folder`` with a card of ``fields`` (and the weights' true SHA-256)."""
    from custom.provenance import file_sha256

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.pt"
    weights.write_bytes(untrained.read_bytes())
    (folder / "model.json").write_text(json.dumps({**fields, "weights": {"sha256": file_sha256(weights)}}))
    return weights


BAD_CARD_FIELDS = {
    "lesion_threshold": [True, "0.4", 1.5, [0.4], {"value": 0.4}],
    "spatial_size": [96, "96,96", [96], [96, "96"], [True, 96], [0, 96]],
    "num_classes": [1, "2", 2.0],
    "in_channels": [0, "3"],
    "network": ["", 3],
    "calibration": ["none", [1]],
    "note": [3],
    "classifier_input": ["", 3, ["decoder"]],
}


@pytest.mark.parametrize("field", list(BAD_CARD_FIELDS))
def test_every_card_field_of_the_wrong_type_is_one_line_naming_the_card_and_field(field, tmp_path, untrained):
    from custom.checkpoints import TrainedModel
    from custom.errors import InputError

    for i, value in enumerate(BAD_CARD_FIELDS[field]):
        weights = _carded(tmp_path / str(i), untrained, **{field: value})
        with pytest.raises(InputError, match=f"model.json: '{field}' is .*; expected"):
            TrainedModel(str(weights))


def test_a_card_that_is_not_an_object_or_lacks_the_weights_hash_is_one_line(tmp_path, untrained):
    from custom.checkpoints import TrainedModel
    from custom.errors import InputError

    weights = _carded(tmp_path, untrained)
    for content, problem in (([0.4], "is a JSON object, this one is a list"), ("0.4", "this one is a str"),
                             ({"lesion_threshold": 0.4}, "'weights' must be an object"),
                             ({"weights": "x"}, "'weights' must be an object")):  # fmt: skip
        (tmp_path / "model.json").write_text(json.dumps(content))
        with pytest.raises(InputError, match=problem):
            TrainedModel(str(weights))


def test_a_card_error_stops_inference_in_one_line(tmp_path, untrained):
    from conftest import run_bundle

    weights = _carded(tmp_path / "m", untrained, lesion_threshold="0.4")
    (tmp_path / "in").mkdir()
    Image.fromarray(picture()).save(tmp_path / "in" / "a.png")
    proc = run_bundle("--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(tmp_path / "in"),
                      "--output_dir", str(tmp_path / "out"), "--ckpt_path", str(weights), check=False)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'm' / 'model.json'}: 'lesion_threshold' is \"0.4\"; expected null or a probability in [0, 1]."
    )
    assert not (tmp_path / "out" / "a.json").exists()


def test_weights_that_differ_from_their_card_are_refused_not_run(tmp_path, untrained):
    """A flipped byte or a truncated copy: the SHA-256 the card records no longer matches."""
    from custom.checkpoints import TrainedModel
    from custom.errors import InputError

    weights = _carded(tmp_path, untrained, lesion_threshold=0.4, spatial_size=[32, 32])
    data = bytearray(weights.read_bytes())
    for damaged in (data[: len(data) // 2], data[:-100] + bytes(b ^ 1 for b in data[-100:])):
        weights.write_bytes(bytes(damaged))
        with pytest.raises(InputError, match="its SHA-256 is not the one its model card .* records"):
            TrainedModel(str(weights))


def test_an_ensemble_member_without_a_threshold_is_refused_and_a_full_ensemble_records_the_mean(
    tmp_path, untrained, caplog
):
    from custom.checkpoints import TrainedModel
    from custom.errors import InputError

    calibrated = _carded(tmp_path / "fold0", untrained, lesion_threshold=0.3)
    plain = tmp_path / "fold1" / "model.pt"
    plain.parent.mkdir()
    plain.write_bytes(untrained.read_bytes())
    uncalibrated = _carded(tmp_path / "fold2", untrained, lesion_threshold=None)
    for members in ([calibrated, plain], [calibrated, uncalibrated], str(tmp_path)):
        with pytest.raises(
            InputError, match=r"--ckpt_path: [12] of the [23] ensemble members have no lesion threshold"
        ):
            TrainedModel(members if isinstance(members, str) else [str(m) for m in members]).lesion_threshold
    _carded(tmp_path / "fold1", untrained, lesion_threshold=0.5)
    _carded(tmp_path / "fold2", untrained, lesion_threshold=0.4)
    with caplog.at_level("INFO", logger="nunet"):
        assert TrainedModel(str(tmp_path)).lesion_threshold == pytest.approx(0.4)
    assert "ensemble lesion threshold 0.4000" in caplog.text
    (tmp_path / "fold1" / "model.json").unlink()
    assert TrainedModel([str(plain)]).lesion_threshold is None  # no card at all: the argmax


def test_a_training_run_folder_as_ckpt_path_is_its_model_pt_not_an_ensemble(tmp_path, caplog):
    from custom.checkpoints import checkpoint_paths
    from custom.errors import InputError

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint_epoch=30.pt").write_bytes(b"last epoch")
    with pytest.raises(InputError, match="no \\*.pt model other than training checkpoints"):
        checkpoint_paths(str(run))
    (run / "model.pt").write_bytes(b"best epoch")
    with caplog.at_level("INFO", logger="nunet"):
        assert checkpoint_paths(str(run)) == [run / "model.pt"]
    assert "a training run; using its model.pt" in caplog.text
    models = tmp_path / "models"
    models.mkdir()
    for name in ("a.pt", "b.pt"):
        (models / name).write_bytes(b"")
    assert checkpoint_paths(str(models)) == [models / "a.pt", models / "b.pt"]  # a folder of models stays an ensemble


# ---------------------------------------------------------------------------------------------------
# Options that take a list, and what the input files say about themselves
# ---------------------------------------------------------------------------------------------------

LIST_OPTIONS = {
    "tta_flips": [0, "[0]", [0], [[2]], [["a"]], [[True]], [[0], 1], {"a": 1}],
    "pixel_spacing": [0.1, "0.1,0.1", [0.1], [0.1, "a"], [0.1, -1], [0.1, float("nan")], [True, 0.1], [0.1] * 3],
    "spatial_size": [32, "32,32", [32], [32, 32.5], [32, "a"], [True, 32], [32, 40]],
}


@pytest.mark.parametrize("option", list(LIST_OPTIONS))
def test_every_option_that_takes_a_list_refuses_malformed_values_in_one_line(option, untrained):
    from custom.engine.options import check_spatial_size
    from custom.engine.tta import FlipTTAInferer
    from custom.errors import InputError
    from custom.networks import get_network
    from custom.transforms import LesionMeasurementsd

    build = {
        "tta_flips": FlipTTAInferer,
        "pixel_spacing": lambda v: LesionMeasurementsd(pixel_spacing=v),
        "spatial_size": lambda v: check_spatial_size(v, get_network("nunet", in_channels=3, num_classes=2)),
    }[option]
    for value in LIST_OPTIONS[option]:
        with pytest.raises(InputError, match=f"^--{option} "):
            build(value)


def test_list_options_on_the_command_line_are_one_line(tmp_path, untrained):
    from conftest import run_bundle, run_script

    (tmp_path / "in").mkdir()
    Image.fromarray(picture()).save(tmp_path / "in" / "a.png")
    common = ("--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(tmp_path / "in"), "--output_dir",
              str(tmp_path / "out"), "--ckpt_path", str(untrained), "--spatial_size", "[32,32]")  # fmt: skip
    results = {
        "tta_flips": run_bundle(*common, "--tta_flips", "[0]", check=False),
        "pixel_spacing": run_bundle(*common, "--pixel_spacing", "0.1", check=False),
        "spatial_size": run_script("export_onnx.py", "--ckpt", str(untrained), "--out", str(tmp_path / "m.onnx"),
                                   "--spatial_size", "[40,40]"),  # fmt: skip
    }
    for option, proc in results.items():
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, (option, proc.stderr[-3000:])
        assert proc.stderr.strip().splitlines()[-1].startswith(f"error: --{option} "), (option, proc.stderr[-500:])
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "out" / "a.json").exists()


def test_a_nifti_without_qform_or_sform_has_no_spacing_and_one_with_them_has(tmp_path):
    import nibabel

    from custom.imageio import read_frames

    pixels = picture().T.copy()
    plain = nibabel.Nifti1Image(pixels, None)  # nibabel's unit voxel sizes, no orientation stated
    plain.header["qform_code"] = plain.header["sform_code"] = 0
    nibabel.save(plain, str(tmp_path / "plain.nii.gz"))
    scanned = nibabel.Nifti1Image(pixels, np.diag([0.2, 0.1, 1.0, 1.0]))
    scanned.header.set_xyzt_units("mm")
    nibabel.save(scanned, str(tmp_path / "scanned.nii.gz"))
    metres = nibabel.Nifti1Image(pixels, np.diag([0.0002, 0.0001, 0.001, 1.0]))
    metres.header.set_xyzt_units("meter")
    nibabel.save(metres, str(tmp_path / "metres.nii.gz"))
    assert read_frames(tmp_path / "plain.nii.gz")[0].spacing is None
    assert read_frames(tmp_path / "scanned.nii.gz")[0].spacing == pytest.approx((0.1, 0.2))
    assert read_frames(tmp_path / "metres.nii.gz")[0].spacing == pytest.approx((0.1, 0.2))


def test_a_mask_with_another_number_of_frames_than_its_image_is_refused(tmp_path):
    import nibabel

    from custom.errors import DataError
    from custom.imageio import check_mask_size

    def stack(name: str, frames: int) -> Path:
        nibabel.save(nibabel.Nifti1Image(np.stack([picture().T] * frames, -1), np.eye(4)), str(tmp_path / name))
        return tmp_path / name

    image = stack("image.nii.gz", 2)
    check_mask_size(image, stack("same.nii.gz", 2))
    check_mask_size(image, stack("one.nii.gz", 1))  # one mask for the whole clip
    for frames in (3, 5):
        with pytest.raises(DataError, match=f"mask has {frames} frames but its image .* has 2"):
            check_mask_size(image, stack(f"more{frames}.nii.gz", frames))
