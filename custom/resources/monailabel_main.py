"""MONAI Label app (``main.py``) serving the MONAI bundles under ``<app>/model/``; written by ``custom.monailabel``.

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
- The label map says ``{"lesion": 1}``: the mask has value 1 on lesion pixels, whereas
  ``metadata.json`` names the channels of the network's logits (channel 0 = lesion), which MONAI Label
  would otherwise report as label value 0.

MONAI Label imports ``torchvision.utils`` at module level for two debug-image helpers this app never
calls. PyPI has no CPU build of torchvision (its wheels need CUDA torch), so when torchvision cannot be
imported, ``torchvision.utils`` alone is registered with helpers that raise; ``import torchvision``
still fails as before, so nothing else mistakes it for the real package.
"""

from __future__ import annotations

import logging
import os
import sys
import types

try:
    import torchvision.utils  # noqa: F401
except Exception:  # not installed, or a CUDA build that cannot load against CPU-only torch

    def _torchvision_unavailable(*args: object, **kwargs: object) -> None:
        raise ImportError("torchvision is not usable in this environment (MONAI Label needs it only to dump debug images)")

    _utils = types.ModuleType("torchvision.utils")
    _utils.make_grid = _utils.save_image = _torchvision_unavailable
    sys.modules["torchvision.utils"] = _utils

import monailabel
from monai.bundle import ConfigParser
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask
from monailabel.utils.others.generic import strtobool

logger = logging.getLogger(__name__)

INFER_OVERRIDE = "monailabel_infer.json"
LABELS = {"lesion": 1}


def local_bundles(model_dir: str, selected: str | None = None) -> dict[str, str]:
    """``{name: path}`` of the bundles in ``model_dir`` (folders with ``configs/metadata.json``), or of ``selected``."""
    found = sorted(
        name for name in os.listdir(model_dir) if os.path.isfile(os.path.join(model_dir, name, "configs", "metadata.json"))
    )
    names = [n.strip() for n in selected.split(",") if n.strip()] if selected else found
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"bundle(s) {missing} not found in {model_dir}; available: {found}")
    return {n: os.path.join(model_dir, n) for n in names}


class OverrideInferTask(BundleInferTask):
    """``BundleInferTask`` reading ``inference.json`` plus the bundle's MONAI Label override config."""

    def __init__(self, path: str, conf: dict[str, str]) -> None:
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
        return parser


class DefaultRunTrainTask(BundleTrainTask):
    """``BundleTrainTask`` that runs the bundle's ``run`` id when the request's ``run_id`` is empty, and
    whose learning-rate schedule ends with the training."""

    def __call__(self, request: dict, datastore: Datastore) -> dict:
        return super().__call__({**request, "run_id": request.get("run_id") or "run"}, datastore)

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

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for name, path in self.bundles.items():
            task = OverrideInferTask(path, self.conf)
            if task.is_valid():
                infers[name] = task
            else:  # BundleInferTask needs trained weights; training still works and writes them
                logger.warning(f"{name}: no models/model.pt; inference is off until a model is trained and the server restarted")
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        if strtobool(self.conf.get("skip_trainers", "false")):
            return {}
        trainers = {name: DefaultRunTrainTask(path, self.conf) for name, path in self.bundles.items()}
        return {name: task for name, task in trainers.items() if task.is_valid()}

    def init_strategies(self) -> dict[str, Strategy]:
        return {"random": Random(), "first": First()}
