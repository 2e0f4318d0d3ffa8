"""Reading NRRD and MetaImage (ITK), writing a mask with the geometry of an input of either, and ITK's
full-depth reading of colour samples, which wide colour PNG and TIFF go through too.

- The first two axes are the picture's columns and rows (x and y, as MONAI lays out 2D images) and the
  third, when there is one, counts the frames; spacing from the header.
- Grey, RGB and RGBA pixels (1, 3 or 4 components) of any sample type. Colour is read as a colour
  picture is (:func:`custom.imageio.pictures.decode_pixels`: luma, alpha dropped), and wide samples keep
  their full depth: ITK Python wraps no image of 16-bit colour, so colour samples are read as float
  vectors (exact for integers up to 2**24) and returned in the file's own sample type.
- An NRRD whose name has no extension, recognised by its content (:mod:`custom.imageio.detect`), is read
  by ITK's NRRD reader: ITK chooses its reader by the name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from custom.errors import DataError
from custom.imageio.base import Frame, MedicalCodec, stack_frames

COLOUR_COMPONENTS = (3, 4)  # RGB, RGBA

# the numpy type of each ITK sample type, for colour samples read as float vectors
_SAMPLE_TYPES = {
    "unsigned_char": np.uint8,
    "char": np.int8,
    "unsigned_short": np.uint16,
    "short": np.int16,
    "unsigned_int": np.uint32,
    "int": np.int32,
    "unsigned_long": np.uint64,
    "long": np.int64,
    "unsigned_long_long": np.uint64,
    "long_long": np.int64,
    "float": np.float32,
    "double": np.float64,
}


class ItkCodec(MedicalCodec):
    """A format family ITK reads and writes (NRRD, MetaImage); its masks are the single-file variant of the input's."""

    def read_frames(self, path: Path) -> list[Frame]:
        """One frame per slice of the third axis (grey, or colour with its channels last), with the header's spacing."""
        image_io = _image_io(path, by_content=not path.name.lower().endswith(self.suffixes))
        components = image_io.GetNumberOfComponents()
        if components != 1 and components not in COLOUR_COMPONENTS:
            raise DataError(f"{path}: {components}-component pixels; expected a grayscale, RGB or RGBA image")
        image, samples = _read(path, image_io)
        # ITK's arrays are indexed backwards ([z,] y, x), channels last: back to x, y[, z], as NIfTI and MONAI
        # lay them out
        spatial = samples.ndim - (components > 1)
        volume = samples.transpose(tuple(range(spatial))[::-1] + tuple(range(spatial, samples.ndim)))
        sx, sy = (float(v) for v in tuple(image.GetSpacing())[:2])
        spacing = (sy, sx) if sx > 0 and sy > 0 else None
        return [Frame(s, spacing) for s in stack_frames(volume, path, channels=components > 1)]

    def write_mask_like(self, source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
        """The input's spacing, origin and direction; of a stack, the frame's slice."""
        import itk

        reader = _reader(source, _image_io(source, by_content=not source.name.lower().endswith(self.suffixes)))
        reader.UpdateOutputInformation()  # the geometry alone, not the pixels
        geometry = reader.GetOutput()
        dims = geometry.GetImageDimension()
        out = itk.image_from_array(np.ascontiguousarray(mask.astype(np.uint8).reshape((1,) * (dims - 2) + mask.shape)))
        out.SetSpacing(geometry.GetSpacing())
        out.SetDirection(geometry.GetDirection())
        origin = np.array(geometry.GetOrigin(), dtype=float)
        if dims > 2:  # the frame's slice of a stack
            direction = itk.array_from_matrix(geometry.GetDirection())
            origin += direction[:, 2] * float(geometry.GetSpacing()[2]) * frame
        out.SetOrigin(origin.tolist())
        itk.imwrite(out, str(path), compression=True)


# detached headers would need their data file renamed with them: their masks are written as the single-file variant
NRRD = ItkCodec("NRRD", (".nrrd", ".nhdr"), {".nrrd": ".nrrd", ".nhdr": ".nrrd"})
METAIMAGE = ItkCodec("MetaImage", (".mha", ".mhd"), {".mha": ".mha", ".mhd": ".mha"})


def read_colour(path: Path) -> np.ndarray:
    """The ``(H, W, C)`` samples of the colour picture at ``path`` (PNG, TIFF) at their full depth, in the file's
    sample type (PIL keeps only the high byte of samples wider than 8 bits)."""
    return _read(path, _image_io(path, by_content=False))[1]


def _image_io(path: Path, by_content: bool) -> Any:
    """ITK's image reader of the file at ``path``, its header read: chosen by the name, or NRRD's ``by_content``."""
    import itk

    if by_content:
        image_io = itk.NrrdImageIO.New()
    else:
        image_io = itk.ImageIOFactory.CreateImageIO(str(path), itk.CommonEnums.IOFileMode_ReadMode)
    if image_io is None:
        raise RuntimeError("ITK recognises no image in it")
    image_io.SetFileName(str(path))
    image_io.ReadImageInformation()
    return image_io


def _reader(path: Path, image_io: Any) -> Any:
    """An ITK reader of ``path``: of the file's own pixel type when it is grey, of float vectors for colour."""
    import itk

    components = image_io.GetNumberOfComponents()
    if components == 1:
        return itk.ImageFileReader.New(FileName=str(path), ImageIO=image_io)
    image_type = itk.Image[itk.Vector[itk.F, components], image_io.GetNumberOfDimensions()]
    return itk.ImageFileReader[image_type].New(FileName=str(path), ImageIO=image_io)


def _read(path: Path, image_io: Any) -> tuple[Any, np.ndarray]:
    """ITK's image of ``path`` and its samples, ``([z,] y, x[, c])``, in the file's own sample type."""
    import itk

    reader = _reader(path, image_io)
    reader.Update()
    image = reader.GetOutput()
    samples = itk.array_from_image(image)
    if image_io.GetNumberOfComponents() == 1:
        return image, samples
    component = image_io.GetComponentTypeAsString(image_io.GetComponentType())
    sample_type = np.dtype(_SAMPLE_TYPES.get(component, np.float64))
    return image, (np.rint(samples) if sample_type.kind in "iu" else samples).astype(sample_type)
