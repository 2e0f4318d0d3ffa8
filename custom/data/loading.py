"""Batches of records whatever their source, and a threaded loader whose failures stop the run.

MONAI's ``ThreadDataLoader`` makes its batches in a thread (``ThreadBuffer``); an exception there (a
collate error, a transform failing on one image) ends that thread, and the consumer sees the end of the
data: the epoch stops early without a word and training goes on with a handful of iterations a time.
:class:`ThreadDataLoader` keeps the thread's exception and raises it in the training loop.

Records of one batch may come from different families (a PNG, a DICOM frame, a NIfTI) whose loaded
images carry different metadata (a pixel spacing or a frame number for some only); PyTorch's collate
takes the keys of the first item and fails on the others. :func:`collate_records` collates the
metadata the items share.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from monai.data import MetaTensor, ThreadBuffer
from monai.data import ThreadDataLoader as MonaiThreadDataLoader
from monai.data import list_data_collate


def collate_records(batch: Sequence[Any]) -> Any:
    """MONAI's ``list_data_collate`` of ``batch``, cut to the keys all its records share, and the metadata of each
    image to the metadata keys all its images share (the items themselves, cached ones included, are unchanged)."""
    if batch and all(isinstance(item, Mapping) for item in batch):
        keys = set.intersection(*(set(item) for item in batch))
        batch = [{k: v for k, v in item.items() if k in keys} for item in batch]
        for key in keys:
            images = [item[key] for item in batch]
            if not all(isinstance(image, MetaTensor) for image in images):
                continue
            shared = set.intersection(*(set(image.meta) for image in images))
            for item, image in zip(batch, images):
                if set(image.meta) != shared:  # a new header on the same pixels
                    meta = {k: v for k, v in image.meta.items() if k in shared}
                    item[key] = MetaTensor(image.as_tensor(), meta=meta, applied_operations=image.applied_operations)
    return list_data_collate(batch)


class _RaisingThreadBuffer(ThreadBuffer):
    """A ``ThreadBuffer`` that raises, once the buffer is drained, the exception that ended its thread."""

    error: BaseException | None = None

    def enqueue_values(self) -> None:
        try:
            super().enqueue_values()
        except BaseException as e:  # noqa: B036 - handed to the consumer, which raises it
            self.error = e

    def __iter__(self) -> Iterator[Any]:
        self.error = None
        yield from super().__iter__()
        if self.error is not None:
            raise self.error


class ThreadDataLoader(MonaiThreadDataLoader):
    """MONAI's ``ThreadDataLoader`` (same arguments) whose batch thread's exception stops the epoch with that
    exception instead of ending it early; batches collated by :func:`collate_records` unless told otherwise."""

    def __init__(self, dataset, *args, collate_fn=collate_records, **kwargs) -> None:
        super().__init__(dataset, *args, collate_fn=collate_fn, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        batches = super(MonaiThreadDataLoader, self).__iter__()  # the plain DataLoader's, as MONAI's buffer takes
        for batch in _RaisingThreadBuffer(batches, self.buffer_size, self.buffer_timeout):
            for _ in range(self.repeats):
                yield batch
