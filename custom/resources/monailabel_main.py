"""MONAI Label app (``main.py``) serving the MONAI bundles under ``<app>/model/``; written by ``custom.workflows.monailabel``.

The layout is MONAI Label's ``monaibundle`` sample app (``model/<bundle name>/`` holding a bundle with
``configs/``, ``models/model.pt`` and its custom package), with these differences, each needed for this
bundle:

- Bundles are found on disk only. The sample app asks the MONAI Model Zoo for its bundle list at
  start-up, which fails offline; here ``--conf models a,b`` selects among the folders in ``model/``
  (default: all of them).
- Inference reads ``configs/inference.json`` merged with ``configs/monailabel_infer.json`` when the
  bundle has one. MONAI Label writes ``data["pred"]`` as the label image and returns
  ``data["result"]`` as JSON; the bundle's own postprocessing keeps the network's dict output in
  ``pred`` and saves files, so the override ends postprocessing with the 2D 0/1 uint8 lesion mask in
  ``pred`` instead (and MONAI Label's final ``Restored`` acts on ``pred`` too, not on the metadata's
  first output name ``seg``).
- Training sets the bundle's ``epochs`` (the length of its learning-rate schedule) to the request's
  ``max_epochs``, which MONAI Label only gives the trainer.
- Training treats an empty ``run_id`` as ``run``. Viewers send the trainer's options back, with
  ``run_id`` left ``""``, and MONAI would then resolve the whole ``train.json``, running both the
  ``training`` and the ``run`` expressions: two trainings.
- Active learning serves the most uncertain unlabelled image first: the strategy ``uncertain``
  (:class:`UncertaintyStrategy`, listed first, for viewers that preselect the first; ``uncertain_<bundle>``
  for each bundle when the app serves several) scores every unlabelled image with the bundle's own
  inference, mirror test-time augmentation added, and serves the one whose lesion probability has
  the highest entropy. ``random`` and ``first`` (MONAI Label's) remain.
- The mask of a NIfTI, NRRD or MetaImage study is written with the study's geometry (spacing,
  direction, origin: ``custom.imageio.write_mask_like``, as the bundle's inference writes it);
  MONAI Label's own writer drops the affine of a 2D image.
- A bad request is answered with a 4xx status and a one-line message instead of a bare HTTP 500: an
  unknown model or bad parameters 400, an image id the datastore does not hold 404, an image the
  bundle's decoder refuses (an unreadable file, a CT image) 422 with the decoder's message.
- After a training, ``models/model.json`` is rewritten for the new weights
  (:func:`custom.workflows.monailabel.card_after_training`): the card of the old weights (their input
  size, threshold and figures) no longer applies, and its SHA-256 would refuse them.
- The label map says ``{"lesion": 1}``: the mask has value 1 on lesion pixels, whereas
  ``metadata.json`` names the channels of the network's logits (channel 0 = lesion), which MONAI Label
  would otherwise report as label value 0.

MONAI Label imports ``torchvision.utils`` at module level for two debug-image helpers this app never
calls. PyPI has no CPU build of torchvision (its wheels need CUDA torch), so when torchvision cannot be
imported, ``torchvision.utils`` alone is registered with helpers that raise; ``import torchvision``
still fails as before, so nothing else mistakes it for the real package.

MONAI Label imports pydicom-seg 0.4.1, which takes ``SegmentationStorage`` from
``pydicom._storage_sopclass_uids``, a module pydicom 3 folded into ``pydicom.uid``: that module is
registered under its old name before MONAI Label is imported, here for the processes that load this app
(MONAI Label's training runs in one of its own) and in ``monailabel_start.py`` for the server itself.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torchvision.utils  # noqa: F401
except Exception:  # not installed, or a CUDA build that cannot load against CPU-only torch

    def _torchvision_unavailable(*args: object, **kwargs: object) -> None:
        raise ImportError(
            "torchvision is not usable in this environment (MONAI Label needs it only to dump debug images)"
        )

    _utils = types.ModuleType("torchvision.utils")
    _utils.make_grid = _utils.save_image = _torchvision_unavailable
    sys.modules["torchvision.utils"] = _utils

import pydicom.uid

if "pydicom._storage_sopclass_uids" not in sys.modules:  # pydicom-seg's import on pydicom 3 (docstring)
    sys.modules["pydicom._storage_sopclass_uids"] = pydicom.uid

import monailabel
from fastapi import HTTPException
from monai.bundle import ConfigParser
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.tasks.infer.basic_infer import BasicInferTask
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask
from monailabel.utils.others.generic import strtobool

logger = logging.getLogger("nunet")

INFER_OVERRIDE = "monailabel_infer.json"
LABELS = {"lesion": 1}
# the views the uncertainty strategy averages: the image and its left-right mirror (inference.json's tta_flips)
MIRROR_TTA = [[], [0]]


def local_bundles(model_dir: str, selected: str | None = None) -> dict[str, str]:
    """``{name: path}`` of the bundles in ``model_dir`` (folders with ``configs/metadata.json``), or of ``selected``."""
    found = sorted(
        name
        for name in os.listdir(model_dir)
        if os.path.isfile(os.path.join(model_dir, name, "configs", "metadata.json"))
    )
    names = [n.strip() for n in selected.split(",") if n.strip()] if selected else found
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"bundle(s) {missing} not found in {model_dir}; available: {found}")
    return {n: os.path.join(model_dir, n) for n in names}


class OverrideInferTask(BundleInferTask):
    """``BundleInferTask`` reading ``inference.json`` plus the bundle's MONAI Label override config, then
    ``config_overrides`` (top-level config keys, e.g. ``{"tta_flips": MIRROR_TTA}``)."""

    def __init__(self, path: str, conf: dict[str, str], config_overrides: Mapping[str, Any] | None = None) -> None:
        self.config_overrides = dict(config_overrides or {})
        super().__init__(path, conf)
        if self.is_valid():
            self.labels = LABELS
            # BundleInferTask restores the size of the key named like the first metadata output ("seg"),
            # but writes the label from output_label_key ("pred"): both must be the mask.
            self.key_pred = self.output_label_key

    def _load_bundle_config(self, path: str, config: str) -> ConfigParser:
        override = os.path.join(path, "configs", INFER_OVERRIDE)
        parser = ConfigParser()
        parser.read_config([config, override] if os.path.isfile(override) else config)
        parser.config.update({self.const.key_bundle_root(): path})
        for key, value in self.config_overrides.items():
            parser[key] = value
        return parser

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        """The mask of a NIfTI, NRRD or MetaImage study written in its family with the study's geometry, others as
        MONAI Label writes them: its writer drops the affine of a 2D image (unit spacing, no origin)."""
        from custom.imageio import mask_suffix, write_mask_like

        source = data.get("image_path")
        suffix = mask_suffix(source) if isinstance(source, str) else None
        if not suffix:
            return super().writer(data, extension, dtype)
        mask = np.asarray(data[self.output_label_key], dtype=np.uint8)  # (x, y), as the study lays it out
        output = os.path.join(tempfile.mkdtemp(), f"label{suffix}")  # MONAI Label removes it once sent
        write_mask_like(Path(source), 0, mask.T, Path(output))
        return output, data.get(self.output_json_key, {})


def binary_entropy(p: float) -> float:
    """Entropy in bits of a lesion/normal call with lesion probability ``p``: 1 at 0.5, 0 at 0 and 1."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1.0 - p) * math.log2(1.0 - p))


def most_uncertain(lesion_probabilities: Mapping[str, float]) -> str:
    """The image id whose lesion probability has the highest :func:`binary_entropy` (ties: the first id
    in sorted order)."""
    return max(sorted(lesion_probabilities), key=lambda image: binary_entropy(lesion_probabilities[image]))


class UncertaintyStrategy(Strategy):
    """Serves the unlabelled image whose lesion/normal call is the most uncertain (uncertainty sampling).

    ``scorer`` is the bundle's inference with mirror test-time augmentation (:data:`MIRROR_TTA`): its
    lesion probability ``p`` averages the image and its left-right mirror. The image with the highest
    entropy of ``p`` is served: the model cannot tell (``p`` near 0.5 on both views) or the two views
    disagree (a confident lesion on one, a confident normal on the other average to near 0.5).

    Scores are kept per image id for as long as the model file keeps its modification time (a training
    writes a new one, and then every image is scored again): the first request costs one inference (two
    network passes) per unlabelled image, later ones score only images added since.
    """

    def __init__(self, scorer: BasicInferTask) -> None:
        super().__init__("Most uncertain unlabelled image first: lesion probability nearest 0.5, mirror TTA averaged")
        self.scorer = scorer
        self._model_mtime: float | None = None
        self._lesion_probabilities: dict[str, float] = {}

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        images = datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels"))
        if not images:
            return None
        model_mtime = os.stat(self.scorer.get_path()).st_mtime
        known = self._lesion_probabilities if model_mtime == self._model_mtime else {}
        self._lesion_probabilities = {
            image: known[image] if image in known else self.lesion_probability(datastore.get_image_uri(image))
            for image in images
        }
        self._model_mtime = model_mtime
        image = most_uncertain(self._lesion_probabilities)
        p = self._lesion_probabilities[image]
        logger.info(f"{request.get('strategy')}: {image} of {len(images)} unlabelled: lesion probability {p:.4f}")
        return {"id": image, "lesion_probability": p, "uncertainty": binary_entropy(p)}

    def lesion_probability(self, image_path: str) -> float:
        """The scorer's lesion probability for the image file ``image_path``."""
        _, data = self.scorer({"image": image_path, "skip_writer": True})
        return float(data["result"]["lesion_probability"])


def user_error(exc: BaseException | None) -> str | None:
    """The one-line message of the bundle's own user error (``custom.errors.UserError``: a file or option the
    user can fix) in ``exc``'s chain of causes, if any; matched by class name, as the app does not import the
    bundle's package."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if any(cls.__name__ == "UserError" for cls in type(exc).__mro__):
            return " ".join(str(exc).split())
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class DefaultRunTrainTask(BundleTrainTask):
    """``BundleTrainTask`` that runs the bundle's ``run`` id when the request's ``run_id`` is empty, whose
    learning-rate schedule ends with the training, and that rewrites the model card for the new weights."""

    def __call__(self, request: dict, datastore: Datastore) -> dict:
        result = super().__call__({**request, "run_id": request.get("run_id") or "run"}, datastore)
        # the bundle's package is imported by the training just run (from the bundle's folder)
        from custom.workflows.monailabel import card_after_training

        trained_with = {k: request.get(k) for k in ("max_epochs", "val_split") if k in request}
        card_after_training(self.bundle_path, {**trained_with, "labelled_images": len(datastore.get_labeled_images())})
        return result

    def _update_overrides(self, overrides: dict) -> None:
        # MONAI Label stops the trainer after the request's max_epochs, but the bundle's schedule (cosine,
        # warm-up) is as long as its own "epochs": 800 by default, so 50 epochs would end at the top of it
        overrides["epochs"] = overrides[self.const.key_train_trainer_max_epochs()]


class BundleApp(MONAILabelApp):
    """Serves every local bundle for inference (once it has ``models/model.pt``) and training from the datastore."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.bundles = local_bundles(os.path.join(app_dir, "model"), conf.get("models"))
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="N-Unet breast ultrasound (MONAI bundle)",
            description="Lesion segmentation and lesion/normal classification of 2D breast-ultrasound images",
            version=monailabel.__version__,
            labels=LABELS,
        )

    def infer(self, request: dict, datastore: Datastore | None = None) -> dict:
        """MONAI Label's inference, with a 4xx status and the problem for a request the user can fix."""
        image = request.get("image")
        store = datastore or self.datastore()
        if isinstance(image, str) and image and not os.path.exists(image) and not store.get_image_uri(image):
            raise HTTPException(status_code=404, detail=f"image {image!r}: not in the datastore")
        try:
            return super().infer(request, datastore)
        except MONAILabelException as e:
            status = 400 if e.error == MONAILabelError.INVALID_INPUT else 500
            raise HTTPException(status_code=status, detail=e.msg) from e
        except HTTPException:
            raise
        except Exception as e:
            message = user_error(e)
            if message is None:  # a bug: its traceback is logged and the client gets a 500
                raise
            raise HTTPException(status_code=422, detail=message) from e

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for name, path in self.bundles.items():
            task = OverrideInferTask(path, self.conf)
            if task.is_valid():
                infers[name] = task
            else:  # BundleInferTask needs trained weights; training still works and writes them
                logger.warning(
                    f"{name}: no models/model.pt; inference is off until a model is trained and the server restarted"
                )
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        if strtobool(self.conf.get("skip_trainers", "false")):
            return {}
        trainers = {name: DefaultRunTrainTask(path, self.conf) for name, path in self.bundles.items()}
        return {name: task for name, task in trainers.items() if task.is_valid()}

    def init_strategies(self) -> dict[str, Strategy]:
        # MONAILabelApp sets up the infer tasks first: a bundle with weights gets an uncertainty strategy,
        # scored by an infer task of its own (its network and settings apart from the served one's)
        uncertain: dict[str, Strategy] = {
            "uncertain" if len(self._infers) == 1 else f"uncertain_{name}": UncertaintyStrategy(
                OverrideInferTask(self.bundles[name], self.conf, {"tta_flips": MIRROR_TTA})
            )
            for name in self._infers
        }
        return {**uncertain, "random": Random(), "first": First()}
