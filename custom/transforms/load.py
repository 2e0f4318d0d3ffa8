"""Loading pictures through the one decoder of the project (:func:`custom.imageio.decode`), with nothing else.

``LoadImaged(reader=PILReader(...))`` still registers MONAI's default readers, and when the chosen
reader raises it silently tries the others: a file our decoder refuses (a NaN pixel) would be read by
ITK instead and reach the network undecoded. :class:`LoadPictured` passes its reader at call time,
which MONAI uses alone, so every image of training, evaluation and inference is decoded by the same
function as in preparation, and a decoding problem stops the run with its one-line message.

Medical files (DICOM, NIfTI, NRRD, MetaImage: :mod:`custom.imageio.registry`) are read frame by frame (the
record's ``frame``, 0 by default), decoded by the same rules, laid out as PIL images are (``(1, W,
H)``) and carry in their metadata their pixel spacing (``pixel_spacing``: millimetres per row and per
column), the ultrasound region a DICOM states (``ultrasound_region``, :mod:`custom.transforms.region`)
and, for a file of several frames, the ``frame``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import ImageReader, MetaTensor, PILReader
from monai.transforms import LoadImaged
from monai.utils import ImageMetaKey

from custom.errors import DataError
from custom.imageio import decode, decode_mask, decode_pixels, mask_pixels, medical_format, read_frames
from custom.transforms.region import REGION_KEY

FRAME_KEY = "frame"


@contextmanager
def _without_reader_registration_noise() -> Iterator[None]:
    """Silences MONAI's GPU-DICOM reader while ``LoadImaged`` registers its default readers.

    ``LoadImaged`` builds every default reader although :class:`LoadPictured` never uses them; with
    pydicom installed and no nvImageCodec (any CPU machine) that reader warns twice per construction,
    a message about GPU decoding that has nothing to do with the run.
    """
    plugin_logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = plugin_logger.level
    plugin_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")
            yield
    finally:
        plugin_logger.setLevel(level)


class LoadPictured(LoadImaged):
    """Reads ``keys`` with PIL and :func:`custom.imageio.decode` (8-bit grayscale, EXIF orientation applied), channel first.

    Args:
        keys: the keys of the file paths.
        mask: read masks instead (:func:`custom.imageio.decode_mask`: orientation applied, colours and
            channels kept for ``BinarizeMaskd``; a medical file's mask frame becomes 0/255).
        allow_missing_keys: as for every dictionary transform.
    """

    def __init__(self, keys: KeysCollection, mask: bool = False, allow_missing_keys: bool = False) -> None:
        self.mask = mask
        self.reader = PILReader(converter=decode_mask if mask else decode)
        with _without_reader_registration_noise():
            super().__init__(
                keys,
                reader=self.reader,
                image_only=True,
                ensure_channel_first=True,
                allow_missing_keys=allow_missing_keys,
            )

    def __call__(self, data: Mapping[Hashable, object], reader: ImageReader | None = None) -> dict:
        d = dict(data)
        for key, meta_key, meta_key_postfix in self.key_iterator(d, self.meta_keys, self.meta_key_postfix):
            path = str(d[key])
            if medical_format(path):
                image = self._load_frame(Path(path), int(d.get(FRAME_KEY, 0)))
                loaded = image if self._loader.image_only else (image, dict(image.meta))
            else:
                try:
                    loaded = self._loader(d[key], reader or self.reader)
                except DataError:
                    raise
                except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ... for bad files
                    # named in one line wherever nothing read the file before (a MONAI Label request)
                    raise DataError(f"{path}: not a readable image ({e})") from e
            if self._loader.image_only:
                d[key] = loaded
            else:  # MONAI Label asks for the metadata beside the image, as LoadImaged gives it
                d[key], d[meta_key or f"{key}_{meta_key_postfix}"] = loaded
        return d

    def _load_frame(self, path: Path, frame: int) -> MetaTensor:
        frames = read_frames(path)
        if not 0 <= frame < len(frames):
            raise IndexError(f"{path}: frame {frame} requested, the file has {len(frames)}")
        pixels = (
            mask_pixels(frames[frame].pixels).astype(np.uint8) * 255
            if self.mask
            else decode_pixels(frames[frame].pixels, str(path))
        )
        spacing = frames[frame].spacing
        meta = {ImageMetaKey.FILENAME_OR_OBJ: str(path), "spatial_shape": np.array(pixels.shape[::-1])}
        if len(frames) > 1:
            meta[FRAME_KEY] = frame
        affine = torch.eye(4, dtype=torch.float64)  # 4x4, as MONAI's readers give a picture's: batches mix them
        if spacing is not None:
            meta["pixel_spacing"] = list(spacing)
            affine[0, 0], affine[1, 1] = spacing[1], spacing[0]  # axis 0 is x (columns), axis 1 y (rows)
        if frames[frame].region is not None:
            meta[REGION_KEY] = list(frames[frame].region)  # custom.transforms.region crops to it
        meta["affine"] = meta["original_affine"] = affine
        # float32, as LoadImage gives every other file
        return MetaTensor(torch.from_numpy(np.ascontiguousarray(pixels.T, dtype=np.float32))[None], meta=meta)
