"""The training loaders (custom/data/loading.py): a failure in the batch thread stops the epoch with its error,
and records of different families share a batch."""

from __future__ import annotations

import pytest
import torch
from monai.data import Dataset, MetaTensor

from custom.data import ThreadDataLoader, collate_records


def _image(**meta) -> MetaTensor:
    return MetaTensor(torch.zeros(1, 4, 4), meta={"filename_or_obj": "x", **meta})


def test_a_failure_in_the_batch_thread_stops_the_epoch_with_that_error():
    """MONAI's loader ended the epoch at the failing batch without a word: training went on with the batches
    made before it. Here the third batch cannot be collated (its second record has no ``label``, the default
    collate takes the keys of the first)."""
    good, bad = {"image": torch.zeros(2), "label": 0}, {"image": torch.zeros(2)}
    records = [good] * 5 + [bad] + [good] * 4
    loader = ThreadDataLoader(Dataset(records), batch_size=2, collate_fn=torch.utils.data.default_collate)
    seen = []
    with pytest.raises(KeyError, match="label"):
        for batch in loader:
            seen.append(batch)
    assert len(seen) == 2


def test_an_epoch_without_failure_gives_every_batch_and_the_loader_runs_again():
    loader = ThreadDataLoader(Dataset([{"image": torch.full((2,), float(i))} for i in range(7)]), batch_size=2)
    for _ in range(2):
        assert [batch["image"][:, 0].tolist() for batch in loader] == [[0, 1], [2, 3], [4, 5], [6]]


def test_records_of_different_families_share_a_batch():
    """A PNG's image (PIL's keys) beside a NIfTI frame's (a pixel spacing, a frame): the metadata both have."""
    picture = {"id": "a", "image": _image(mode="L", affine=torch.eye(4))}
    frame = {"id": "b", "frame": 2, "image": _image(pixel_spacing=[0.2, 0.3], frame=2, affine=torch.eye(4))}
    batch = collate_records([picture, frame])
    assert set(batch) == {"id", "image"} and batch["id"] == ["a", "b"]
    assert batch["image"].shape == (2, 1, 4, 4)
    assert set(batch["image"].meta) >= {"filename_or_obj", "affine"}
    assert "pixel_spacing" not in batch["image"].meta and "mode" not in batch["image"].meta
    assert "pixel_spacing" in frame["image"].meta  # the record itself (a cached item) keeps its metadata
