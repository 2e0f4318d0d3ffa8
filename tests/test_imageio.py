"""Reading images and masks of every mode (custom/imageio/), atomic writing, and a runtime without dataset preparation."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from custom.errors import DataError
from custom.fileio import atomic_file, atomic_write_json
from custom.imageio import read_gray, read_mask, read_mask_rgb


def test_read_gray_accepts_gray_rgb_rgba_palette_and_16_bit(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray).save(tmp_path / "l.png")
    Image.fromarray(np.dstack([gray] * 3)).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([gray] * 3 + [np.full_like(gray, 128)])).save(tmp_path / "rgba.png")
    Image.fromarray(gray).convert("P").save(tmp_path / "p.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "i16.png")  # 16 bits: 255 -> 65535
    Image.fromarray(gray).convert("CMYK").save(tmp_path / "cmyk.tif")
    for name in ("l.png", "rgb.png", "rgba.png", "p.png", "i16.png", "cmyk.tif"):
        assert np.array_equal(read_gray(tmp_path / name), gray), name


@pytest.mark.parametrize("bits", [10, 12, 14, 16])
def test_wide_integer_images_are_scaled_by_their_bit_depth_not_their_container(tmp_path, bits):
    gray = np.linspace(0, 255, 24).round().astype(np.uint8).reshape(4, 6)
    Image.fromarray(np.round(gray * ((2**bits - 1) / 255)).astype(np.uint16)).save(tmp_path / "x.png")
    assert np.array_equal(read_gray(tmp_path / "x.png"), gray)
    # a dark 12-bit image (maximum 2000) is still read as 12-bit data: 2000 of 4095, not of 2047
    Image.fromarray(np.array([[0, 2000]], dtype=np.uint16)).save(tmp_path / "dark.png")
    assert read_gray(tmp_path / "dark.png").tolist() == [[0, round(2000 * 255 / 4095)]]


def test_non_finite_pixels_name_the_file(tmp_path):
    Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)).save(tmp_path / "nan.tif")
    with pytest.raises(DataError, match="non-finite") as error:
        read_gray(tmp_path / "nan.tif")
    assert str(tmp_path / "nan.tif") in str(error.value)


def test_read_mask_binarises_any_encoding(tmp_path):
    expected = np.zeros((4, 5), dtype=bool)
    expected[1:3, 2:4] = True
    Image.fromarray(expected).save(tmp_path / "bit.png")  # 1-bit, like BUSI's main masks
    Image.fromarray(expected.astype(np.uint8)).save(tmp_path / "zero_one.png")
    Image.fromarray(np.dstack([expected * 255] * 3 + [np.full(expected.shape, 255)]).astype(np.uint8)).save(
        tmp_path / "rgba.png"
    )
    green = np.zeros((4, 5, 3), dtype=np.uint8)
    green[expected, 1] = 255
    Image.fromarray(green).save(tmp_path / "green.png")
    for name in ("bit", "zero_one", "rgba", "green"):
        assert np.array_equal(read_mask(tmp_path / f"{name}.png"), expected), name


def test_transparent_mask_pixels_are_background(tmp_path):
    rgba = np.full((2, 2, 4), 255, dtype=np.uint8)
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "m.png")
    assert read_mask_rgb(tmp_path / "m.png")[0, 0].tolist() == [0, 0, 0]
    assert read_mask(tmp_path / "m.png").sum() == 3


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "zero-byte file"), (b"not a picture", "not a readable image"), (None, "does not exist")],
)
def test_unreadable_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as error:
        read_gray(path)
    assert str(path) in str(error.value)


def test_truncated_png_is_unreadable(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable image"):
        read_gray(tmp_path / "t.png")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "datalist.json"
    atomic_write_json(path, {"all": [1]})
    with pytest.raises(RuntimeError), atomic_file(path) as f:
        f.write(b"{half")
        raise RuntimeError("interrupted")
    assert path.read_text().replace(" ", "").replace("\n", "") == '{"all":[1]}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["datalist.json"]


def test_the_runtime_transforms_import_no_dataset_preparation_module():
    """Loading, decisions and outputs read and write images through custom.imageio: importing custom.transforms
    (a fresh interpreter, so no other test's imports count) loads nothing of custom.data."""
    code = "import sys, custom.transforms; print([m for m in sys.modules if m.split('.')[:2] == ['custom', 'data']])"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", result.stdout
