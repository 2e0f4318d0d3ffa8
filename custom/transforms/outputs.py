"""Post-processing: how the raw multi-task output becomes decisions, metrics inputs and files.

One transform, :class:`MultiTaskDecisiond`, turns ``{"seg": logits, "cls": logits}`` into the CSB-gated
mask and the class decision, optionally made consistent by prediction refining (Aumente-Maestro et al.).
Validation, evaluation and inference all run it, so the CSB gate
(:func:`custom.networks.csb.csb_gate`) and the refining are applied identically everywhere.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import MapTransform
from monai.utils import ImageMetaKey

from custom.errors import DataError, check_list, is_positive
from custom.evaluation.measurements import measure_lesion
from custom.fileio import atomic_file, atomic_write_json
from custom.imageio import (
    DICOM,
    OUTPUT_STEM,
    codec_for,
    dicom_references,
    mask_suffix,
    output_stem,
    png_bytes,
    write_dicom_seg,
    write_mask_like,
)
from custom.keys import DecisionKeys
from custom.networks.csb import (
    check_csb_mode,
    check_lesion_threshold,
    check_temperature,
    csb_gate,
    lesion_probability,
    predicted_class,
)
from custom.paths import CONFIGS_DIR
from custom.transforms.labels import class_names as default_class_names
from custom.transforms.region import BOX_KEY, SOURCE_KEY

# the segmentation logit of the frame outside the scan region: a probability of about 2e-9, certain background
_BACKGROUND_LOGIT = -20.0

logger = logging.getLogger("nunet")


class MatchLabelSized(MapTransform):
    """Resamples the segmentation logits of one decollated prediction to the size of its segmentation target.

    Evaluation scores every method against the masks at each image's original size (the convention
    of the papers' tables, and the only one under which methods with different input sizes compare
    like with like): the network predicts at its input size, and the logits are brought back
    bilinearly before the threshold and the CSB gate, so the mask's outline is not the blocky
    nearest-neighbour upsampling of a low-resolution mask. When prediction and target already share
    their size (validation during training), nothing changes. When the input was cropped to its scan
    region (:class:`custom.transforms.CropScanRegiond`, the box in the image's metadata), the logits
    are resampled to the box and pasted into the target's frame, the frame outside it certain background.

    Args:
        pred_key / label_key: where the network output and the target dict are.
        task: the key of the segmentation logits in both.
        image_key: the input image, whose metadata holds the scan region's box.
    """

    def __init__(
        self, pred_key: str = "pred", label_key: str = "label", task: str = "seg", image_key: str = "image"
    ) -> None:
        super().__init__(keys=[pred_key], allow_missing_keys=True)
        self.pred_key, self.label_key, self.task, self.image_key = pred_key, label_key, task, image_key

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        pred, label = d.get(self.pred_key), d.get(self.label_key)
        if not (isinstance(pred, Mapping) and isinstance(label, Mapping) and self.task in pred and self.task in label):
            return d
        logits, size = pred[self.task], tuple(label[self.task].shape[1:])
        if tuple(logits.shape[1:]) == size:  # validation in training: the target was cropped and resized alike
            return d
        box = getattr(d.get(self.image_key), "meta", {}).get(BOX_KEY)
        box = None if box is None else [int(v) for v in box]
        # the target is the uncropped original when the box lies inside it and is smaller
        pasted = (
            box is not None and box[2] <= size[0] and box[3] <= size[1] and (box[2] - box[0], box[3] - box[1]) != size
        )
        inner = (box[2] - box[0], box[3] - box[1]) if pasted else size
        resized = F.interpolate(torch.as_tensor(logits)[None].float(), size=inner, mode="bilinear", align_corners=False)
        logits = resized[0]
        if pasted:
            frame = torch.full((logits.shape[0], *size), _BACKGROUND_LOGIT, dtype=logits.dtype, device=logits.device)
            frame[:, box[0] : box[2], box[1] : box[3]] = logits
            logits = frame
        d[self.pred_key] = {**pred, self.task: logits}
        return d


class MultiTaskDecisiond(MapTransform):
    """Derives decisions from one decollated multi-task prediction, leaving ``pred`` and ``label`` untouched.

    Written keys (those of tasks the network has):

    - ``seg_prob`` (1,H,W): lesion probability after CSB; ``seg_pred``: ``seg_prob >= threshold`` as 0/1;
      with a label also ``seg_pred_ungated``, the mask before the gate (how much Dice the gate costs).
    - ``cls_prob`` (C,): softmax; ``lesion_prob`` (1,): ``1 - p(normal)``; ``cls_pred`` (1,): the class
      decision (``argmax``, after refining); ``lesion_pred_onehot`` (2,): the binary lesion decision
      ``cls_pred != normal`` as [normal, lesion].
    - ``result``: a JSON-ready summary (class probabilities, predicted class, CSB decision, with
      ``refine`` what refining changed, and with test-time augmentation ``tta_disagreement``, the
      standard deviation of the views' lesion probabilities), which inference writes next to the mask and MONAI Label
      returns in its response.
    - With a label: ``seg_label`` (1,H,W), ``cls_label_onehot`` (C,), ``lesion_true`` (1,), ``lesion_onehot`` (2,).

    With ``refine`` (prediction refining, section 3.1, module 3; see :func:`refine_prediction`),
    after the CSB gate and the threshold: an image classified normal gets an empty mask (``seg_prob``
    and ``seg_pred`` zero), and an image classified benign/malignant (lesion) whose mask is empty is
    classified normal. The decisions (``seg_pred``, ``cls_pred``, ``lesion_pred_onehot``,
    ``result["predicted_class"]``, ``result["lesion_pixels"]``) follow the refined prediction; the
    probabilities (``cls_prob``, ``lesion_prob``, ``result["class_probabilities"]``) stay the network's,
    so ROC-AUC still ranks the network's scores. Refining needs both tasks and does nothing for a
    single-task network.

    Args:
        csb_mode: ``hard``, ``soft`` or ``off`` (N-Unet paper, section 3.4).
        num_classes: classes of the classification head.
        threshold: probability above which a pixel is lesion.
        pred_key / label_key: where the network output and the target dict are.
        class_names: names for ``result`` (default: normal/lesion or normal/benign/malignant).
        refine: apply prediction refining (off by default).
        lesion_threshold: lesion-probability threshold of the class decision and the CSB gate, chosen on
            validation data (:mod:`custom.evaluation.calibration`); None keeps the paper's argmax.
        temperature: the classification logits are divided by it before everything else (temperature
            scaling, fitted on validation data, :func:`custom.evaluation.calibration.fit_temperature`),
            so probabilities, threshold and gate are the calibrated ones; 1 keeps the network's own.
            When it is not 1, ``result`` also holds ``lesion_probability_uncalibrated``.
    """

    def __init__(
        self,
        csb_mode: str = "hard",
        num_classes: int = 2,
        threshold: float = 0.5,
        pred_key: str = "pred",
        label_key: str = "label",
        class_names: Sequence[str] | None = None,
        refine: bool = False,
        lesion_threshold: float | None = None,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(keys=[pred_key], allow_missing_keys=False)
        self.lesion_threshold = check_lesion_threshold(lesion_threshold)
        self.temperature = check_temperature(temperature)
        self.csb_mode = check_csb_mode(csb_mode)
        self.num_classes = num_classes
        self.threshold = threshold
        self.pred_key = pred_key
        self.label_key = label_key
        self.class_names = list(class_names or default_class_names(num_classes))
        self.refine = refine

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        pred = d[self.pred_key]
        result: dict = {}
        predicted: int | None = None
        if "cls" in pred:
            raw_logits = pred["cls"].float().unsqueeze(0)
            cls_logits = raw_logits / self.temperature
            cls_prob = torch.softmax(cls_logits, dim=1)[0]
            lesion_p = lesion_probability(cls_logits)[0]
            predicted = int(predicted_class(cls_logits, self.lesion_threshold)[0])
            d[DecisionKeys.CLS_PROB] = cls_prob
            d[DecisionKeys.LESION_PROB] = lesion_p.reshape(1)
            result.update(
                class_probabilities={n: float(p) for n, p in zip(self.class_names, cls_prob)},
                predicted_class=self.class_names[predicted],
                lesion_probability=float(lesion_p),
            )
            if self.lesion_threshold is not None:
                result["lesion_threshold"] = float(self.lesion_threshold)
            if self.temperature != 1.0:
                result["temperature"] = self.temperature
                result["lesion_probability_uncalibrated"] = float(lesion_probability(raw_logits)[0])
        if "disagreement" in pred:  # test-time augmentation or an ensemble: the spread of the members
            result["tta_disagreement"] = float(pred["disagreement"])
        if "seg" in pred:
            seg_logits = pred["seg"].float().unsqueeze(0)
            # segmentation-only networks have no class decision to gate with
            mode = self.csb_mode if "cls" in pred else "off"
            gate_input = cls_logits if "cls" in pred else seg_logits.new_zeros(1, self.num_classes)
            seg_prob = csb_gate(seg_logits, gate_input, mode, self.lesion_threshold)[0]
            seg_pred = (seg_prob >= self.threshold).float()
            if isinstance(d.get(self.label_key), Mapping):  # evaluation: what the gate changed is measured
                d[DecisionKeys.SEG_PRED_UNGATED] = (torch.sigmoid(seg_logits[0]) >= self.threshold).float()
            scale = _csb_scale(mode, result.get("lesion_probability"), result.get("predicted_class"))
            refining = None
            if self.refine and predicted is not None:
                refined, keep_mask = refine_prediction(predicted, seg_pred)
                refining = {
                    "mask_cleared": not keep_mask and bool(seg_pred.any()),
                    "class_set_to_normal": refined != predicted,
                }
                predicted = refined
                if not keep_mask:
                    seg_prob, seg_pred = torch.zeros_like(seg_prob), torch.zeros_like(seg_pred)
            d[DecisionKeys.SEG_PROB] = seg_prob
            d[DecisionKeys.SEG_PRED] = seg_pred
            result["csb"] = {"mode": mode, "scale": scale}
            result["lesion_pixels"] = int(seg_pred.sum())
            if refining is not None:
                result["refining"] = refining
        if predicted is not None:
            d[DecisionKeys.CLS_PRED] = torch.tensor([predicted])
            d[DecisionKeys.LESION_PRED_ONEHOT] = torch.tensor([predicted == 0, predicted != 0], dtype=torch.float32)
            result["predicted_class"] = self.class_names[predicted]
        d["result"] = result
        label = d.get(self.label_key)
        if isinstance(label, Mapping):
            if "seg" in label:
                d[DecisionKeys.SEG_LABEL] = label["seg"].float()
            if "cls" in label:
                y = int(label["cls"])
                d["cls_label_onehot"] = torch.nn.functional.one_hot(torch.tensor(y), self.num_classes).float()
                d[DecisionKeys.LESION_TRUE] = torch.tensor([float(y != 0)])
                d["lesion_onehot"] = torch.tensor([y == 0, y != 0], dtype=torch.float32)
        return d


def refine_prediction(predicted_class: int, seg_pred: torch.Tensor) -> tuple[int, bool]:
    """Prediction refining of Aumente-Maestro et al. (section 3.1, module 3) for one image: ``(refined class, keep the mask)``.

    - Segmentation refinement: an image classified normal (class 0) has its mask cleared.
    - Classification refinement: an image classified as a lesion class whose thresholded mask
      ``seg_pred`` has no lesion pixel is classified normal (its mask is already empty).
    """
    if predicted_class == 0:
        return 0, False
    if not bool(seg_pred.any()):
        return 0, True
    return predicted_class, True


def _csb_scale(mode: str, lesion_p: float | None, predicted: str | None) -> float:
    """The factor CSB multiplied the mask probabilities by, reported with every prediction."""
    if mode == "hard":
        return 0.0 if predicted == "normal" else 1.0
    if mode == "soft":
        return float(lesion_p)
    return 1.0


class LesionMeasurementsd(MapTransform):
    """Adds the measurements of the predicted lesion (:func:`custom.evaluation.measurements.measure_lesion`) to ``result``.

    Runs after the mask is brought back to the image's original size (``Invertd``), so the lengths are
    those of the input image.

    Args:
        mask_key: the key of the (1, *spatial) predicted mask.
        result_key: the JSON summary to add ``lesion_measurements`` to.
        pixel_spacing: millimetres per pixel (rows, columns); None: the image's own, from its metadata
            (``pixel_spacing``, set for DICOM, NIfTI, NRRD and MetaImage files), else unknown.
        reverse_indexing: the spatial axes are (width, height), as MONAI's ``PILReader`` (and so
            :class:`custom.transforms.LoadPictured`) lays images out; False for (height, width).
    """

    def __init__(
        self,
        mask_key: str = DecisionKeys.SEG_PRED,
        result_key: str = "result",
        pixel_spacing: Sequence[float] | None = None,
        reverse_indexing: bool = True,
    ) -> None:
        super().__init__(keys=[mask_key], allow_missing_keys=True)
        self.mask_key, self.result_key = mask_key, result_key
        if pixel_spacing is not None:
            expected = "two positive millimetre values per pixel, rows and columns, e.g. [0.1,0.1]"
            pixel_spacing = [float(v) for v in check_list("--pixel_spacing", pixel_spacing, 2, is_positive, expected)]
        self.pixel_spacing = pixel_spacing
        self.reverse_indexing = reverse_indexing

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        if self.mask_key in d:
            mask = torch.as_tensor(d[self.mask_key]).detach().cpu().numpy()
            spacing = self.pixel_spacing or image_spacing(d)
            measurements = measure_lesion(mask[0].T if self.reverse_indexing else mask[0], spacing)
            d[self.result_key] = {**d.get(self.result_key, {}), "lesion_measurements": measurements}
        return d


def image_spacing(data: Mapping, image_key: str = "image") -> list[float] | None:
    """Millimetres per pixel (rows, columns) of the input image, from its metadata, or None when it has none."""
    spacing = getattr(data.get(image_key), "meta", {}).get("pixel_spacing")
    return None if spacing is None else [float(v) for v in spacing]


def scan_region(data: Mapping, image_key: str = "image") -> dict | None:
    """The box the input was cropped to (:class:`custom.transforms.CropScanRegiond`) and its source, or None.

    ``{"box": [x0, y0, x1, y1], "source": "dicom" | "found" | "whole"}``, in pixel columns and rows of
    the input, ends excluded.
    """
    meta = getattr(data.get(image_key), "meta", {})
    if meta.get(BOX_KEY) is None:
        return None
    source = meta.get(SOURCE_KEY)
    return {"box": [int(v) for v in meta[BOX_KEY]], "source": str(source[0] if isinstance(source, list) else source)}


def _output_stem(data: Mapping, image_key: str, source: str) -> str:
    """The record's ``output_stem`` (unique within the run, :func:`custom.imageio.with_output_stems`), else
    that of the input file alone (records not made by :func:`custom.data.image_records`)."""
    return data.get(OUTPUT_STEM) or output_stem(source, _frame(data, image_key))


def _frame(data: Mapping, image_key: str) -> int | None:
    frame = data[image_key].meta.get("frame")
    return None if frame is None else int(frame)


class SaveMaskd(MapTransform):
    """Writes the predicted mask of one image to ``<output_dir>/<stem>_seg.<ext>``, in the input's family.

    - NIfTI input: a NIfTI mask (values 0/1) with the input's affine; NRRD and MetaImage: the same format
      with the input's spacing, origin and direction (:func:`custom.imageio.write_mask_like`).
    - Pictures (PNG, JPEG, BMP, TIFF) and DICOM: a PNG (0/255); with the DICOM's pixel spacing as the
      PNG's physical pixel size (its ``pHYs`` chunk).
    - DICOM, besides: ``<stem>_seg.dcm``, the mask as a DICOM Segmentation referencing the source
      instance and frame (:func:`custom.imageio.write_dicom_seg`), which a PACS stores with the study;
      a source without the UIDs to reference gets a warning instead.
    The stem is the record's ``output_stem``, unique within the run (:func:`custom.imageio.with_output_stems`:
    ``_frame<k>`` for frame ``k`` of a file of several frames), the one :class:`SaveResultd` uses for the JSON
    beside it.

    Args:
        output_dir: the folder of the outputs.
        key: the ``(1, *spatial)`` 0/1 mask, spatial axes laid out as the loaded image (``(W, H)``).
        image_key: the loaded image, whose metadata names the input file.
    """

    def __init__(self, output_dir: str, key: str = DecisionKeys.SEG_PRED, image_key: str = "image") -> None:
        super().__init__(keys=[key], allow_missing_keys=True)
        self.output_dir = Path(output_dir)
        self.image_key = image_key

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            source = str(d[self.image_key].meta[ImageMetaKey.FILENAME_OR_OBJ])
            frame = _frame(d, self.image_key)
            mask = (torch.as_tensor(d[key]).detach().cpu().numpy()[0].T > 0).astype(np.uint8)  # (H, W)
            stem = self.output_dir / f"{_output_stem(d, self.image_key, source)}_seg"
            suffix = mask_suffix(source)
            if suffix:
                write_mask_like(Path(source), frame or 0, mask, stem.with_name(stem.name + suffix))
                continue
            spacing = image_spacing(d, self.image_key)
            # pHYs holds dots per inch in PIL: 25.4 mm per inch over millimetres per pixel (columns, rows)
            dpi = None if spacing is None else (25.4 / spacing[1], 25.4 / spacing[0])
            with atomic_file(stem.with_name(stem.name + ".png")) as f:
                f.write(png_bytes(mask * 255, dpi))
            if codec_for(source) is DICOM:
                try:
                    write_dicom_seg(Path(source), frame or 0, mask, stem.with_name(stem.name + ".dcm"), _algorithm())
                except DataError as e:  # the PNG and the JSON stand; only the Segmentation cannot be made
                    logger.warning("no DICOM Segmentation: %s", e)
        return d


@functools.lru_cache(maxsize=1)
def _algorithm() -> tuple[str, str]:
    """The name and version a DICOM Segmentation credits: the network's and the bundle's (metadata.json)."""
    return "N-Unet", json.loads((CONFIGS_DIR / "metadata.json").read_text())["version"]


class SaveResultd(MapTransform):
    """Writes ``data[key]`` (the JSON summary of :class:`MultiTaskDecisiond`) to ``<output_dir>/<stem>.json``.

    The stem is the record's ``output_stem`` (the input's name without extension, made unique within the
    run by :func:`custom.imageio.with_output_stems`), so the JSON sits next to ``<stem>_seg.<ext>``
    written by :class:`SaveMaskd` with the same rule. The JSON also names the input's ``frame``,
    ``pixel_spacing`` and the ``scan_region`` it was cropped to (:func:`scan_region`) when it has them and,
    for a DICOM input, its ``dicom`` UIDs (study, series, SOP instance, frame of reference). Written atomically.
    """

    def __init__(self, output_dir: str, key: str = "result", image_key: str = "image") -> None:
        super().__init__(keys=[key])
        self.output_dir = output_dir
        self.image_key = image_key

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        source = str(d[self.image_key].meta[ImageMetaKey.FILENAME_OR_OBJ])
        frame = _frame(d, self.image_key)
        spacing = image_spacing(d, self.image_key)
        where = {"image": source, **({"frame": frame} if frame is not None else {})}
        where.update({"pixel_spacing": spacing} if spacing is not None else {})
        if codec_for(source) is DICOM:
            where["dicom"] = dicom_references(Path(source))
        region = scan_region(d, self.image_key)
        where.update({"scan_region": region} if region is not None else {})
        # atomic but not fsync'ed: a per-image result is cheap to recompute, and an fsync per image
        # cost 5 ms of every image's time
        atomic_write_json(
            os.path.join(self.output_dir, f"{_output_stem(d, self.image_key, source)}.json"),
            {**where, **d[self.keys[0]]},
            durable=False,
        )
        return d
