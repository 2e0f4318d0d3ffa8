"""Near-duplicate images by SSIM (Aumente-Maestro et al., section 4.2), grouped so a split never separates them.

Aumente-Maestro et al. compute the SSIM of every pair of BUSI images (0.614 +- 0.172 for duplicated pairs,
0.103 +- 0.040 for the others) and reviews the top-ranked pairs by eye. Without the eye:

1. every grayscale image is resized to 64x64 (PIL bilinear, which averages when shrinking);
2. pre-filter: a 16x16 block-averaged thumbnail, minus the dataset's mean thumbnail (ultrasound
   images share a bright-top, dark-bottom depth profile that otherwise dominates), is correlated
   with every other; each image keeps its 32 best-correlated partners as candidates;
3. scikit-image's ``structural_similarity`` (7x7 window) on the 64x64 images of each candidate pair;
4. pairs with SSIM >= 0.5 are joined into groups (connected components, i.e. union-find).

Measured on BUSI (780 images, 2 CPU cores): 17,722 candidate pairs instead of 303,810, 6-8 s of SSIM
after the images are read, and exactly the 247 pairs and 149 groups (119 pairs, 23 triplets,
5 quadruplets, 2 groups of 7; 341 images) that the exhaustive search over all pairs finds. Against
the Curated BUSI list (its 330 removed images are exactly the members of duplicate groups), on "is
this image in a duplicate group": recall 0.976 (322 / 330), precision 0.944 (322 / 341).

Tuning, exhaustive search at 64x64: threshold 0.45 -> recall 0.982 / precision 0.910; 0.5 -> 0.976 /
0.944; 0.55 -> 0.964 / 0.952. Lower thresholds chain unrelated images through union-find (at the
paper's review threshold of 0.23, 686 of the 780 images end up in one group). At 128x128 the best
balance was worse (0.936 / 0.936 at 0.425). The misses are copies where one is a much wider crop
(malignant 65 at 584x922 against 66 at 584x655: SSIM 0.42); most extra members are consecutive
frames of one lesion (benign 61, 94, 108, 114, 116, 119, 122 at SSIM 0.80-0.86), which belong on one
side of a split anyway.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.metrics import structural_similarity

from custom.errors import DataError
from custom.fileio import atomic_write_text, check_outside
from custom.imageio import is_hidden, is_image_name, read_gray

SSIM_SIZE = 64
PREFILTER_SIZE = 16
NEIGHBOURS = 32
THRESHOLD = 0.5


@dataclass
class DuplicateSearch:
    """Result of :func:`find_duplicate_groups`.

    Attributes:
        labels: group index of every image (``0 .. num_groups - 1``; singletons have their own).
        pairs: ``(i, j, ssim)`` of every candidate pair at or above the threshold.
        pairs_compared: number of SSIM computations.
        seconds: wall time of the pre-filter and the SSIM computations.
    """

    labels: np.ndarray
    pairs: list[tuple[int, int, float]]
    pairs_compared: int
    seconds: float

    def groups(self) -> list[list[int]]:
        """Indices of the images of each group with two or more members, in order of first member."""
        members: dict[int, list[int]] = {}
        for i, label in enumerate(self.labels):
            members.setdefault(int(label), []).append(i)
        return [m for m in members.values() if len(m) > 1]


def ssim_thumbnail(gray: np.ndarray) -> np.ndarray:
    """``gray`` (uint8) resized to the common SSIM size, 64x64."""
    return np.asarray(Image.fromarray(gray).resize((SSIM_SIZE, SSIM_SIZE), Image.Resampling.BILINEAR))


def candidate_pairs(thumbnails: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """``(P, 2)`` index pairs ``i < j`` where either image is among the other's best-correlated ``neighbours``."""
    n = len(thumbnails)
    if n - 1 <= neighbours:
        return np.argwhere(np.triu(np.ones((n, n), dtype=bool), 1))
    factor = SSIM_SIZE // PREFILTER_SIZE
    small = thumbnails.astype(np.float64).reshape(n, PREFILTER_SIZE, factor, PREFILTER_SIZE, factor).mean(axis=(2, 4))
    features = (small - small.mean(axis=0)).reshape(n, -1)
    features -= features.mean(axis=1, keepdims=True)
    features /= np.linalg.norm(features, axis=1, keepdims=True) + 1e-12
    correlation = features @ features.T
    np.fill_diagonal(correlation, -np.inf)
    best = np.argpartition(-correlation, neighbours, axis=1)[:, :neighbours]
    chosen = np.zeros((n, n), dtype=bool)
    chosen[np.repeat(np.arange(n), neighbours), best.ravel()] = True
    return np.argwhere(np.triu(chosen | chosen.T, 1))


def find_duplicate_groups(
    thumbnails: Sequence[np.ndarray], threshold: float = THRESHOLD, neighbours: int = NEIGHBOURS
) -> DuplicateSearch:
    """Groups of near-duplicate images among ``thumbnails`` (64x64 uint8, see :func:`ssim_thumbnail`)."""
    start = time.perf_counter()
    stack = np.stack(thumbnails) if len(thumbnails) else np.zeros((0, SSIM_SIZE, SSIM_SIZE), np.uint8)
    n = len(stack)
    candidates = candidate_pairs(stack, neighbours) if n > 1 else np.zeros((0, 2), dtype=int)
    pairs = []
    for i, j in candidates:
        score = structural_similarity(stack[i], stack[j], data_range=255)
        if score >= threshold:
            pairs.append((int(i), int(j), float(score)))
    edges = np.array([(i, j) for i, j, _ in pairs], dtype=int).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, components = connected_components(graph, directed=False)
    # renumber groups in order of their first member, so labels do not depend on scipy's numbering
    _, first, inverse = np.unique(components, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return DuplicateSearch(order[inverse], pairs, len(candidates), time.perf_counter() - start)


def membership_scores(found: set[str], reference: set[str]) -> dict[str, float | int]:
    """Recall and precision of ``found`` (ids in a duplicate group) against ``reference`` (ids known to be)."""
    hits = len(found & reference)
    return {
        "recall": hits / len(reference) if reference else 1.0,
        "precision": hits / len(found) if found else 1.0,
        "found": len(found),
        "reference": len(reference),
        "both": hits,
    }


_MASK_NAME = re.compile(r".*_mask(_\d+)?", re.IGNORECASE)


def find_duplicates_in_folder(src: Path, out: Path, threshold: float = THRESHOLD) -> dict[str, Any]:
    """Searches every image under ``src`` (recursively; BUSI-style ``*_mask*`` files are skipped) and
    writes ``group,file,best_ssim`` rows for the members of each duplicate group to the CSV ``out``.

    ``file`` is relative to ``src``; ``best_ssim`` is the member's highest SSIM with another member.
    Returns counts for the command line.
    """
    if not src.is_dir():
        raise DataError(f"{src}: folder does not exist")
    check_outside(out, [src])
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and is_image_name(p.name) and not is_hidden(p.name) and not _MASK_NAME.fullmatch(p.stem)
    )
    if len(files) < 2:
        raise DataError(f"{src}: {len(files)} image(s) found, duplicates need at least 2")
    search = find_duplicate_groups([ssim_thumbnail(read_gray(p)) for p in files], threshold)
    best: dict[int, float] = {}
    for i, j, score in search.pairs:
        best[i], best[j] = max(best.get(i, 0.0), score), max(best.get(j, 0.0), score)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["group", "file", "best_ssim"])
    groups = search.groups()
    for g, members in enumerate(groups):
        writer.writerows([g, files[i].relative_to(src).as_posix(), f"{best[i]:.4f}"] for i in members)
    atomic_write_text(out, table.getvalue())
    return {
        "images": len(files),
        "groups": len(groups),
        "images_in_groups": sum(len(m) for m in groups),
        "pairs_compared": search.pairs_compared,
        "seconds": round(search.seconds, 1),
    }
