"""Writing a DICOM input's mask as a binary DICOM Segmentation (highdicom) that references its source.

A PACS stores the Segmentation with the study and a viewer lays the mask over the image it names: the
Segmentation is of the source's patient and study, references the source instance (and, for a cine loop,
the frame) and states the source's pixel spacing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from custom.errors import DataError
from custom.fileio import atomic_path
from custom.imageio.dicom import dicom_spacing

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


def write_dicom_seg(source: Path, frame: int, mask: np.ndarray, path: Path, algorithm: tuple[str, str]) -> None:
    """Writes ``mask`` (``(H, W)``, non-zero = lesion) of frame ``frame`` of the DICOM ``source`` as a binary
    DICOM Segmentation (highdicom) at ``path``, atomically.

    The Segmentation is of ``source``'s patient and study, references the source instance (and, for a
    multi-frame source, the frame) it segments, keeps its frame of reference when it has one and
    states the pixel spacing read from it (:func:`custom.imageio.dicom.dicom_spacing`), so a PACS viewer
    lays the mask over the image. One segment, "Lesion", produced by ``algorithm`` (name, version).
    :class:`DataError` for a source without the UIDs a reference needs (every scanner writes them; some
    converters do not).
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
    spacing = dicom_spacing(header)
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
