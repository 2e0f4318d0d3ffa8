"""Near-duplicate groups by SSIM with a correlation pre-filter (Aumente-Maestro et al., section 4.2).

The code under test: ``custom/data/duplicates.py``.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from custom.data.duplicates import candidate_pairs, find_duplicate_groups, membership_scores, ssim_thumbnail

REPO = Path(__file__).resolve().parents[1]


def _scan(rng: np.random.Generator, h: int = 120, w: int = 150) -> np.ndarray:
    """An ultrasound-like picture: smooth structure, a dark blob, a depth profile and speckle."""
    structure = gaussian_filter(rng.standard_normal((h, w)), 6)
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.hypot(yy - rng.uniform(30, 90), xx - rng.uniform(30, 120)) < rng.uniform(10, 25)
    depth = np.exp(-np.linspace(0, 1.2, h))[:, None]
    pixels = (120 + 400 * structure) * (1 - 0.7 * blob) * depth * rng.rayleigh(1.0, (h, w))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _near_copy(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """The same scan re-exported: slightly cropped and rescaled, with new noise, like BUSI's duplicates."""
    h, w = image.shape
    crop = image[2 : h - 3, 4 : w - 2]
    copy = np.asarray(Image.fromarray(crop).resize((int(w * 1.1), int(h * 1.05)), Image.Resampling.BICUBIC))
    return np.clip(copy + rng.normal(0, 6, copy.shape), 0, 255).astype(np.uint8)


def _images(n_distinct: int = 40):
    rng = np.random.default_rng(0)
    images = [_scan(rng) for _ in range(n_distinct)]
    images += [_near_copy(rng, images[0]), _near_copy(rng, images[0]), _near_copy(rng, images[7])]
    return images  # groups: {0, 40, 41}, {7, 42}


def test_finds_the_copies_and_nothing_else():
    search = find_duplicate_groups([ssim_thumbnail(i) for i in _images()])
    assert search.groups() == [[0, 40, 41], [7, 42]]
    assert len(set(search.labels)) == 40
    assert all(score >= 0.5 for _, _, score in search.pairs)


def test_prefilter_keeps_the_pairs_exhaustive_search_finds():
    thumbnails = [ssim_thumbnail(i) for i in _images()]
    filtered = find_duplicate_groups(thumbnails, neighbours=4)
    exhaustive = find_duplicate_groups(thumbnails, neighbours=len(thumbnails))
    assert filtered.pairs_compared < exhaustive.pairs_compared == len(thumbnails) * (len(thumbnails) - 1) // 2
    assert filtered.groups() == exhaustive.groups()


def test_candidate_pairs_are_unique_and_ordered():
    pairs = candidate_pairs(np.stack([ssim_thumbnail(i) for i in _images()]), neighbours=3)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert len({tuple(p) for p in pairs}) == len(pairs)


def test_membership_scores():
    scores = membership_scores({"a", "b", "c", "x"}, {"a", "b", "c", "d"})
    assert scores["recall"] == 0.75 and scores["precision"] == 0.75 and scores["both"] == 3


def test_find_duplicates_script_writes_groups_and_skips_masks(tmp_path):
    src = tmp_path / "data"
    (src / "benign").mkdir(parents=True)
    for k, image in enumerate(_images(n_distinct=8)):
        Image.fromarray(image).save(src / "benign" / f"benign ({k}).png")
        Image.fromarray(image > 128).save(src / "benign" / f"benign ({k})_mask.png")
    out = tmp_path / "groups.csv"
    proc = subprocess.run(
        [sys.executable, "scripts/find_duplicates.py", "--src", str(src), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "11 images" in proc.stdout
    rows = list(csv.DictReader(out.open()))
    assert [(r["group"], r["file"]) for r in rows] == [
        ("0", "benign/benign (0).png"),
        ("0", "benign/benign (8).png"),
        ("0", "benign/benign (9).png"),
        ("1", "benign/benign (10).png"),
        ("1", "benign/benign (7).png"),
    ]


def test_find_duplicates_script_reports_bad_input_in_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/find_duplicates.py",
            "--src",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "g.csv"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {tmp_path / 'missing'}: folder does not exist"
