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
    from custom.data.inputs import OUTPUT_STEM, with_output_stems

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
    from custom.workflows.crossval import calibrate_run

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
