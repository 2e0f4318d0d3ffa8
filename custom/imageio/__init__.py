"""Image codecs: reading pictures, masks and medical files, and writing masks, for every other package.

After the shape of nnU-Net's ``imageio``: one reader (and mask writer) per format family, a base
interface and a registry that chooses a file's reader by its name, else by its content.

- :mod:`~custom.imageio.pictures`: PNG, JPEG, BMP and TIFF of any mode (16-bit, alpha, palette, EXIF
  orientation) and the one decoder to 8-bit grey (:func:`decode`, :func:`decode_pixels`); PNGs out.
- :mod:`~custom.imageio.masks`: masks of any encoding, and whether a mask fits its image.
- :mod:`~custom.imageio.base`: a medical file's :class:`Frame` s and the :class:`MedicalCodec` interface;
  the codecs :mod:`~custom.imageio.dicom` (ultrasound DICOM, every transfer syntax),
  :mod:`~custom.imageio.nifti` and :mod:`~custom.imageio.itk_formats` (NRRD, MetaImage), and
  :mod:`~custom.imageio.dicom_seg` (a DICOM input's mask as a DICOM Segmentation).
- :mod:`~custom.imageio.registry` (which codec reads a file) with :mod:`~custom.imageio.detect` (files
  without an extension, by content); :mod:`~custom.imageio.names` (input stems and unique output names).

The runtime transforms (:mod:`custom.transforms`) and dataset preparation (:mod:`custom.data`) read and
write images only through here.
"""

from .base import Frame, MedicalCodec
from .dicom import DICOM, dicom_references
from .dicom_seg import write_dicom_seg
from .masks import check_mask_size, decode_mask, mask_pixels, read_mask, read_mask_rgb
from .names import OUTPUT_STEM, file_stem, is_hidden, output_stem, with_output_stems
from .pictures import IMAGE_PNG_LEVEL, decode, decode_pixels, open_image, png_bytes, write_png
from .registry import (
    codec_for,
    frame_count,
    image_size,
    is_image_file,
    is_image_name,
    mask_suffix,
    medical_format,
    read_frames,
    read_gray,
    write_mask_like,
)

__all__ = [
    "DICOM",
    "Frame",
    "IMAGE_PNG_LEVEL",
    "MedicalCodec",
    "OUTPUT_STEM",
    "check_mask_size",
    "codec_for",
    "decode",
    "decode_mask",
    "decode_pixels",
    "dicom_references",
    "file_stem",
    "frame_count",
    "image_size",
    "is_hidden",
    "is_image_file",
    "is_image_name",
    "mask_pixels",
    "mask_suffix",
    "medical_format",
    "open_image",
    "output_stem",
    "png_bytes",
    "read_frames",
    "read_gray",
    "read_mask",
    "read_mask_rgb",
    "with_output_stems",
    "write_dicom_seg",
    "write_mask_like",
    "write_png",
]
