"""Reading the medical-imaging formats ultrasound leaves the scanner in: DICOM, NIfTI, NRRD and MetaImage.

Each file becomes a list of :class:`Frame` s: a 2D picture (rows, columns; grayscale, or colour with
its channels last) with its pixel spacing in millimetres when the file states one. A multi-frame
DICOM (a cine loop) gives one frame per image, and so does the third axis of a NIfTI, NRRD or
MetaImage volume, whose slices are the frames. :func:`custom.data.io.decode_pixels` then makes each
frame the 8-bit grayscale picture the network reads, by the same rules as every PNG or JPEG.

- **DICOM** (pydicom 3 with the pylibjpeg and pyjpegls plugins): ultrasound only (a CT, MR or X-ray
  Modality is refused, :data:`ULTRASOUND_MODALITIES`); every transfer syntax scanners write
  (uncompressed, JPEG baseline and extended, JPEG lossless, JPEG-LS, JPEG 2000, RLE); grayscale
  (``MONOCHROME2``; ``MONOCHROME1`` is inverted over its bit range, its 0 being white), signed and up to
  16-bit samples, ``RGB``, ``YBR_FULL`` and ``YBR_FULL_422`` (converted to RGB), palette colour;
  spacing from the Sequence of Ultrasound Regions (``PhysicalDeltaX/Y`` of the first region measured
  in centimetres) or else ``PixelSpacing``.
- **NIfTI** (nibabel), **NRRD**, **MHA/MHD** (ITK): the first two axes are the picture's columns and
  rows (x and y, as MONAI lays out 2D images), spacing from the header's voxel sizes (a NIfTI without
  qform and sform states none); an RGB NIfTI (RGB24, RGBA32) is colour like an RGB PNG.

A file whose name has no image extension (PACS exports name files by number or UID) is recognised by
its content (:func:`medical_format`): the DICOM preamble's ``DICM``, a NIfTI-1/2 header (gzipped or
not), an NRRD's ``NRRD`` magic.
"""

from __future__ import annotations

import copy
import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custom.data.errors import DataError
from custom.fileio import atomic_path

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
MEDICAL_SUFFIXES = DICOM_SUFFIXES + NIFTI_SUFFIXES + ITK_SUFFIXES
_FORMAT_NAMES = {
    ".dcm": "DICOM",
    ".dicom": "DICOM",
    ".nii": "NIfTI",
    ".nii.gz": "NIfTI",
    ".nrrd": "NRRD",
    ".nhdr": "NRRD",
}
_FORMAT_NAMES |= {".mha": "MetaImage", ".mhd": "MetaImage"}

# The modalities read as ultrasound: ultrasound itself, intravascular ultrasound, "other" (secondary captures
# and converted files often say OT) and none stated. A CT, MR, X-ray, ... image would be classified as if it
# were breast ultrasound, a meaningless answer given without a word.
ULTRASOUND_MODALITIES = ("US", "IVUS", "OT", "")

# The Sequence of Ultrasound Regions states its deltas in these units; 3 is centimetres (DICOM PS3.3 C.8.5.5.1.15)
_CENTIMETRES = 3


@dataclass
class Frame:
    """One 2D picture of a medical file.

    Attributes:
        pixels: ``(H, W)`` or ``(H, W, C)`` array (rows first, channels last), in the file's own values.
        spacing: millimetres per pixel along rows and columns, or None when the file states none.
        region: the ultrasound region the file states, ``(x0, y0, x1, y1)`` in pixel columns and rows,
            ends excluded (DICOM's Sequence of Ultrasound Regions), or None.
    """

    pixels: np.ndarray
    spacing: tuple[float, float] | None = None
    region: tuple[int, int, int, int] | None = None


def medical_suffix(name: str) -> str | None:
    """The medical-format suffix ``name`` ends with (any case), or None."""
    lower = name.lower()
    return next((s for s in MEDICAL_SUFFIXES if lower.endswith(s)), None)


def is_dicom_name(name: str) -> bool:
    return name.lower().endswith(DICOM_SUFFIXES)


def medical_format(path: str | os.PathLike) -> str | None:
    """The medical-format suffix the file at ``path`` is read as: its name's, else its content's, else None.

    The content is looked at only for a name without an image extension: a PACS export's ``IM000001``
    or ``1.2.840.113619...`` is read as what it holds, while ``scan.png`` is never opened here.
    """
    name = os.fspath(path)
    suffix = medical_suffix(name)
    if suffix or _has_picture_suffix(name) or not os.path.isfile(name):
        return suffix
    return sniff_format(Path(name))


def _has_picture_suffix(name: str) -> bool:
    from custom.data.io import PICTURE_SUFFIXES  # io imports this module

    return name.lower().endswith(PICTURE_SUFFIXES)


# NIfTI-1 and NIfTI-2 single-file headers: (header size, where the magic is, the magic)
_NIFTI_MAGICS = ((348, 344, b"n+1\0"), (540, 4, b"n+2\0"))


def sniff_format(path: Path) -> str | None:
    """The medical-format suffix of the file at ``path`` by its content: ``.dcm``, ``.nii``, ``.nii.gz``, ``.nrrd``, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(352)
        if head[:2] == b"\x1f\x8b":  # gzip: a compressed NIfTI, the usual form of one
            with gzip.open(path, "rb") as f:
                return ".nii.gz" if _is_nifti(f.read(352)) else None
    except (OSError, EOFError):  # unreadable, or a truncated gzip stream: not a file this package reads
        return None
    if head[128:132] == b"DICM":
        return ".dcm"
    if head[:4] == b"NRRD":
        return ".nrrd"
    return ".nii" if _is_nifti(head) else None


def _is_nifti(head: bytes) -> bool:
    return any(
        len(head) >= at + 4
        and head[at : at + 4] == magic
        and size in (int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big"))
        for size, at, magic in _NIFTI_MAGICS
    )


def read_frames(path: Path) -> list[Frame]:
    """The frames of the medical file at ``path``; :class:`DataError` naming the file when it cannot be read.

    The last two files read are kept (keyed by their modification time): reading a cine loop frame by
    frame decodes it once, not once per frame.
    """
    stat = path.stat()
    return _read_frames(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_frames(name: str, mtime_ns: int, size: int) -> list[Frame]:
    path = Path(name)
    suffix = medical_format(path)
    try:
        if suffix in DICOM_SUFFIXES:
            return _dicom_frames(path)
        if suffix in NIFTI_SUFFIXES:
            return _nifti_frames(path)
        if suffix in ITK_SUFFIXES:
            return _itk_frames(path)
    except DataError:
        raise
    except Exception as e:  # pydicom, nibabel and ITK raise their own errors (and RuntimeError, OSError) for bad files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable {_FORMAT_NAMES[suffix]} image ({reason})") from e
    raise DataError(f"{path}: not a medical image format this package reads ({', '.join(MEDICAL_SUFFIXES)})")


def frame_count(path: Path) -> int:
    """How many frames :func:`read_frames` gives for ``path``, from the header where the format allows."""
    if medical_format(path) in DICOM_SUFFIXES:
        import pydicom

        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as e:  # InvalidDicomError, OSError, ...
            raise DataError(f"{path}: not a readable DICOM file ({e})") from e
        return int(getattr(header, "NumberOfFrames", 1) or 1)
    return len(read_frames(path))


# ---------------------------------------------------------------- DICOM
def _dicom_frames(path: Path) -> list[Frame]:
    import pydicom
    from pydicom.pixels import apply_color_lut, pixel_array

    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        raise DataError(f"{path}: DICOM file without pixel data")
    modality = str(getattr(ds, "Modality", "") or "").upper()
    if modality not in ULTRASOUND_MODALITIES:
        raise DataError(
            f"{path}: a {modality} image (DICOM Modality {modality}), not ultrasound; the model reads breast "
            "ultrasound only and would classify it as one"
        )
    # as_rgb: YBR_FULL and YBR_FULL_422, stored or JPEG-compressed, come back as RGB
    pixels = pixel_array(ds, as_rgb=True)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    elif photometric == "MONOCHROME1":
        pixels = _invert(pixels, int(ds.BitsStored), signed=int(getattr(ds, "PixelRepresentation", 0)) == 1)
    if frames == 1:
        pixels = pixels[None]
    spacing, region = _dicom_spacing(ds), _dicom_region(ds)
    return [Frame(np.asarray(frame), spacing, region) for frame in pixels]


def _invert(pixels: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """MONOCHROME1 pixels as MONOCHROME2: mirrored over the range of ``bits`` bits, whose lowest value is white.

    Over the stored bit range, not the image's own, so an inverted image keeps its contrast: a
    picture without pure white does not become one whose darkest pixel is black.
    """
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return np.clip((low + high) - pixels.astype(np.int64), low, high).astype(pixels.dtype)


def _dicom_spacing(ds: Any) -> tuple[float, float] | None:
    """Millimetres per pixel (rows, columns): the first ultrasound region in centimetres, else ``PixelSpacing``."""
    for region in getattr(ds, "SequenceOfUltrasoundRegions", None) or []:
        units = (getattr(region, "PhysicalUnitsXDirection", None), getattr(region, "PhysicalUnitsYDirection", None))
        if units == (_CENTIMETRES, _CENTIMETRES):
            dx, dy = float(region.PhysicalDeltaX), float(region.PhysicalDeltaY)
            if dx > 0 and dy > 0:
                return (abs(dy) * 10.0, abs(dx) * 10.0)
    spacing = getattr(ds, "PixelSpacing", None)
    if spacing is not None and len(spacing) == 2 and all(float(v) > 0 for v in spacing):
        return (float(spacing[0]), float(spacing[1]))
    return None


def _dicom_region(ds: Any) -> tuple[int, int, int, int] | None:
    """The box of the scan (:class:`Frame` ``region``): the first ultrasound region of 2D tissue, else the first one.

    ``RegionLocationMinX0``/``MinY0``/``MaxX1``/``MaxY1`` include their last pixel; the box excludes it.
    """
    located = [
        r
        for r in getattr(ds, "SequenceOfUltrasoundRegions", None) or []
        if all(hasattr(r, f"RegionLocation{k}") for k in ("MinX0", "MinY0", "MaxX1", "MaxY1"))
    ]
    tissue = [r for r in located if getattr(r, "RegionSpatialFormat", None) == 1]  # 1: 2D (tissue or flow)
    if not located:
        return None
    r = (tissue or located)[0]
    x0, y0, x1, y1 = (int(getattr(r, f"RegionLocation{k}")) for k in ("MinX0", "MinY0", "MaxX1", "MaxY1"))
    return (x0, y0, x1 + 1, y1 + 1) if x1 >= x0 and y1 >= y0 else None


# ---------------------------------------------------------------- NIfTI, NRRD, MetaImage
def _slices(volume: np.ndarray, path: Path, channels: bool = False) -> list[np.ndarray]:
    """``(H, W)`` pictures (``(H, W, C)`` with ``channels``, last axis) from an array whose first two axes are x
    (columns) and y (rows)."""
    if volume.ndim == 2 + channels:
        volume = volume[:, :, None]
    if volume.ndim != 3 + channels or min(volume.shape[:2]) < 1:
        raise DataError(f"{path}: expected a 2D image or a stack of 2D frames, got shape {volume.shape}")
    return [np.ascontiguousarray(volume[:, :, k].swapaxes(0, 1)) for k in range(volume.shape[2])]


def _load_nifti(path: Path) -> Any:
    """The NIfTI image at ``path``; one without its extension is parsed from its bytes (nibabel goes by the name)."""
    import nibabel

    if medical_suffix(path.name):
        return nibabel.load(str(path))
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    nifti = nibabel.Nifti2Image if data[4:8] == b"n+2\0" else nibabel.Nifti1Image
    return nifti.from_bytes(data)


def _itk_reader(path: Path) -> Any:
    """ITK's reader of ``path``; one without its extension is an NRRD (ITK picks its reader by the name)."""
    import itk

    kwargs = {} if medical_suffix(path.name) else {"ImageIO": itk.NrrdImageIO.New()}
    return itk.ImageFileReader.New(FileName=str(path), **kwargs)


def _nifti_frames(path: Path) -> list[Frame]:
    image = _load_nifti(path)
    volume = np.asarray(image.dataobj)
    while volume.ndim > 3 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    colour = volume.dtype.names is not None  # RGB24 / RGBA32: one record of 8-bit samples per voxel
    if colour:
        volume = np.stack([volume[name] for name in volume.dtype.names], axis=-1)
    return [Frame(s, _nifti_spacing(image)) for s in _slices(volume, path, channels=colour)]


# NIfTI's spatial units and their size in millimetres; "unknown" counts as millimetres when the header
# states a real orientation (the NIfTI default), see _nifti_spacing
_NIFTI_UNIT_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}


def _nifti_spacing(image: Any) -> tuple[float, float] | None:
    """Millimetres per pixel (rows, columns), or None when the header states no real geometry.

    A NIfTI with neither a qform nor an sform (both codes 0, "method 1" of the standard) has voxel sizes
    that mean nothing, usually the 1.0 every writer fills in: millimetres measured with them would be
    invented, so such a file has no spacing, like a PNG.
    """
    header = image.header
    if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0:
        return None
    zooms = header.get_zooms()
    if len(zooms) < 2 or min(zooms[:2]) <= 0:
        return None
    unit = _NIFTI_UNIT_MM.get(header.get_xyzt_units()[0], 1.0)
    return (float(zooms[1]) * unit, float(zooms[0]) * unit)


def _itk_frames(path: Path) -> list[Frame]:
    import itk

    reader = _itk_reader(path)
    reader.Update()
    image = reader.GetOutput()
    # ITK's arrays are indexed backwards ([z,] y, x): back to x, y[, z] as NIfTI and MONAI lay them out
    volume = itk.array_from_image(image)
    components = image.GetNumberOfComponentsPerPixel()
    if components > 1:
        raise DataError(f"{path}: {components}-component pixels; expected a grayscale image")
    volume = volume.transpose(tuple(range(volume.ndim))[::-1])
    sx, sy = (float(v) for v in tuple(image.GetSpacing())[:2])
    return [Frame(s, (sy, sx) if sx > 0 and sy > 0 else None) for s in _slices(volume, path)]


# ---------------------------------------------------------------- masks in the input's geometry
# detached headers would need their data file renamed with them: their masks are written as the single-file variant
_MASK_SUFFIX = {
    ".nii": ".nii.gz",
    ".nii.gz": ".nii.gz",
    ".nrrd": ".nrrd",
    ".nhdr": ".nrrd",
    ".mha": ".mha",
    ".mhd": ".mha",
}


def mask_suffix(source: str) -> str | None:
    """The suffix of the mask written for input ``source`` in its own family, or None (DICOM, pictures: PNG)."""
    return _MASK_SUFFIX.get(medical_format(source) or "")


def write_mask_like(source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
    """Writes ``mask`` (``(H, W)`` uint8) to ``path`` with the geometry of frame ``frame`` of ``source``.

    NIfTI: the input's affine and header, one slice (the frame's, its origin moved along the third
    axis); NRRD and MetaImage: the input's spacing, origin and direction. Written atomically
    (:func:`custom.fileio.atomic_path`: into a folder created if needed, then renamed).
    """
    suffix = medical_format(source)
    if suffix not in NIFTI_SUFFIXES + ITK_SUFFIXES:
        raise ValueError(f"{source}: masks are written in the input's format for NIfTI, NRRD and MetaImage only")
    with atomic_path(path, suffix=mask_suffix(source.name)) as tmp:
        (_write_nifti_like if suffix in NIFTI_SUFFIXES else _write_itk_like)(source, frame, mask, tmp)


def _write_nifti_like(source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
    import nibabel

    image = _load_nifti(source)
    data = mask.T  # (x, y), as the input stores it
    if len(image.shape) > 2:
        data = data[:, :, None]
    affine = image.affine.copy()
    affine[:3, 3] += affine[:3, 2] * frame  # the frame's slice of a stack
    header = image.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_data_shape(data.shape)
    nibabel.save(nibabel.Nifti1Image(data.astype(np.uint8), affine, header), str(path))


def _write_itk_like(source: Path, frame: int, mask: np.ndarray, path: Path) -> None:
    import itk

    reader = _itk_reader(source)
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


# ---------------------------------------------------------------- DICOM in, DICOM out
# Type 2 attributes of the patient and study modules a Segmentation copies from its source: a source that
# omits one (the standard lets it be empty, and some exports drop empty ones) gets it empty
_TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
_REFERENCE_UIDS = {
    "study_instance_uid": "StudyInstanceUID",
    "series_instance_uid": "SeriesInstanceUID",
    "sop_instance_uid": "SOPInstanceUID",
    "frame_of_reference_uid": "FrameOfReferenceUID",
}


def dicom_references(path: Path) -> dict[str, str]:
    """The UIDs that identify the DICOM instance at ``path``: study, series, SOP instance and, when it has one,
    frame of reference (``{"study_instance_uid": ..., ...}``), for outputs to name their source by."""
    import pydicom

    header = pydicom.dcmread(path, stop_before_pixels=True)
    return {key: str(header[keyword].value) for key, keyword in _REFERENCE_UIDS.items() if keyword in header}


def write_dicom_seg(source: Path, frame: int, mask: np.ndarray, path: Path, algorithm: tuple[str, str]) -> None:
    """Writes ``mask`` (``(H, W)``, non-zero = lesion) of frame ``frame`` of the DICOM ``source`` as a binary
    DICOM Segmentation (highdicom) at ``path``, atomically.

    The Segmentation is of ``source``'s patient and study, references the source instance (and, for a
    multi-frame source, the frame) it segments, keeps its frame of reference when it has one and
    states the pixel spacing read from it (:func:`_dicom_spacing`), so a PACS viewer lays the mask over
    the image. One segment, "Lesion", produced by ``algorithm`` (name, version). :class:`DataError` for a
    source without the UIDs a reference needs (every scanner writes them; some converters do not).
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    header = pydicom.dcmread(source, stop_before_pixels=True)
    missing = [
        keyword for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if not header.get(keyword)
    ]
    if missing:
        raise DataError(f"{source}: no {', '.join(missing)}, which a DICOM Segmentation must reference")
    view = _single_frame_view(header) if int(getattr(header, "NumberOfFrames", 1) or 1) > 1 else header
    for keyword in _TYPE2_COPIED:
        if keyword not in view:
            setattr(view, keyword, "")
    spacing = _dicom_spacing(header)
    name, version = algorithm
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=name, version=version, family=codes.DCM.ArtificialIntelligence
        ),
    )
    seg = hd.seg.Segmentation(
        source_images=[view],
        pixel_array=(mask != 0).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=hd.UID(),
        series_number=1,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="nunet-bundle",
        manufacturer_model_name=name,
        software_versions=version,
        device_serial_number="n/a",  # software, not a device
        series_description=f"{name} lesion mask",
        pixel_measures=None if spacing is None else _pixel_measures(spacing),
    )
    if view is not header:
        _reference_frame(seg, header, frame)
    with atomic_path(path, suffix=".dcm") as tmp:
        seg.save_as(tmp)


def _pixel_measures(spacing: tuple[float, float]) -> Any:
    """The Segmentation's pixel spacing (rows, columns), with the slice thickness a 2D picture does not have empty.

    highdicom reads a Pixel Measures Sequence only with both attributes, and writes the thickness only
    when given one; an ultrasound image states none, so it is written empty rather than made up.
    """
    import highdicom as hd

    measures = hd.PixelMeasuresSequence(list(spacing), slice_thickness=None)
    measures[0].SliceThickness = None
    return measures


def _single_frame_view(header: Any) -> Any:
    """A multi-frame ultrasound header as one of its frames, the single-frame picture the mask is of.

    highdicom segments a multi-frame image only in a patient coordinate system, which ultrasound cine
    loops have none of; one frame of one is a plain 2D picture, and :func:`_reference_frame` then
    points the Segmentation back at the source and frame.
    """
    from pydicom.uid import UltrasoundImageStorage

    view = copy.deepcopy(header)
    del view.NumberOfFrames
    view.SOPClassUID = UltrasoundImageStorage
    return view


def _reference_frame(seg: Any, source: Any, frame: int) -> None:
    """Points every reference of ``seg`` to the single-frame view back at ``source`` (its SOP class) and its frame."""
    from pydicom.dataset import Dataset

    def visit(item: Any) -> None:
        for element in item:
            if element.VR != "SQ":
                continue
            for child in element.value:
                if isinstance(child, Dataset) and child.get("ReferencedSOPInstanceUID") == source.SOPInstanceUID:
                    child.ReferencedSOPClassUID = source.SOPClassUID
                    if element.keyword == "SourceImageSequence":
                        child.ReferencedFrameNumber = frame + 1
                visit(child)

    visit(seg)
