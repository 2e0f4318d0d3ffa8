"""Loading pictures through the one decoder of the project (:func:`custom.data.io.decode`), with nothing else.

``LoadImaged(reader=PILReader(...))`` still registers MONAI's default readers, and when the chosen
reader raises it silently tries the others: a file our decoder refuses (a NaN pixel) would be read by
ITK instead and reach the network undecoded. :class:`LoadPictured` passes its reader at call time,
which MONAI uses alone, so every image of training, evaluation and inference is decoded by the same
function as in preparation, and a decoding problem stops the run with its one-line message.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.data import ImageReader, PILReader
from monai.transforms import LoadImaged

from custom.data.io import decode, decode_mask


class LoadPictured(LoadImaged):
    """Reads ``keys`` with PIL and :func:`custom.data.io.decode` (8-bit grayscale, EXIF orientation applied), channel first.

    Args:
        keys: the keys of the file paths.
        mask: read masks instead (:func:`custom.data.io.decode_mask`: orientation applied, colours and
            channels kept for ``BinarizeMaskd``).
        allow_missing_keys: as for every dictionary transform.
    """

    def __init__(self, keys: KeysCollection, mask: bool = False, allow_missing_keys: bool = False) -> None:
        self.reader = PILReader(converter=decode_mask if mask else decode)
        super().__init__(
            keys, reader=self.reader, image_only=True, ensure_channel_first=True, allow_missing_keys=allow_missing_keys
        )

    def __call__(self, data: Mapping[Hashable, object], reader: ImageReader | None = None) -> dict:
        return super().__call__(data, reader or self.reader)
