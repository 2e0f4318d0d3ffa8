"""Re-running a fold's saved model on one test case, at the network resolution.

The network, the deterministic preprocessing and the decision rule are built from the configs the
fold was evaluated with (the run's own, its overrides, then ``evaluate.json``), whose trained model
gives the input size, the lesion/normal threshold and the temperature: the drawn image, label, mask
and class are exactly what the evaluation scored in ``per_image.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser

from custom.configs import recorded_config_files
from custom.networks.csb import csb_gate, predicted_class

from .runs import Run

EVALUATE_CONFIG = "evaluate.json"  # merged after the run's configs for the evaluation of each fold


@dataclass
class Case:
    """A preprocessed test case and the model's outputs on it.

    The 2-D arrays are in the image file's row/column order: MONAI's PIL reader loads a PNG as (W, H),
    so they are the network's arrays transposed back, all the same way so contours stay aligned.

    Attributes:
        image: (C, H, W) network input, ``label``: (H, W) binary ground truth, ``mask``: (H, W) CSB-gated
        binary prediction, ``cls_prob``: class probabilities (calibrated), ``cls_pred``: the decided class (by
        the lesion/normal threshold where there is one), ``input``: the (1, C, H, W) batch fed to the network.
    """

    image: np.ndarray
    label: np.ndarray
    mask: np.ndarray
    cls_prob: np.ndarray
    cls_pred: int
    input: torch.Tensor


class FoldModel:
    """The network of ``fold<k>/model.pt`` with the preprocessing of the run's configs.

    Args:
        run: the run.
        fold: the fold whose model and test split are used.
    """

    def __init__(self, run: Run, fold: int) -> None:
        configs = recorded_config_files(run.meta["config_files"])
        parser = ConfigParser()
        parser.read_config([*configs, str(Path(configs[0]).parent / EVALUATE_CONFIG)])  # as custom.workflows.crossval
        parser.update(dict(run.meta.get("overrides", {})))
        # point the config at the run's data, or its default would build the demo dataset
        parser["dataset_dir"] = str(run.data_dir)
        parser["ckpt_path"] = str(run.fold_dir(fold) / "model.pt")
        self.run, self.fold = run, fold
        self.csb_mode = str(parser["csb_mode"])
        self.lesion_threshold = parser.get_parsed_content("lesion_threshold")
        self.temperature = float(parser.get_parsed_content("temperature"))
        self.preprocessing = parser.get_parsed_content("validate#preprocessing")
        trained = parser.get_parsed_content("trained_model")
        self.network = trained.load(parser.get_parsed_content("network_def")).eval()

    def predict(self, image_id: str) -> Case:
        """Preprocesses the test record ``image_id`` and runs the network on it with the evaluation's decision rule:
        the temperature, then the CSB gate and the class decision by the lesion/normal threshold."""
        data = self.preprocessing(self.run.test_record(self.fold, image_id))
        # a plain tensor: MetaTensor metadata breaks the arithmetic of monai.visualize.GradCAM
        x = torch.as_tensor(np.asarray(data["image"]), dtype=torch.float32).unsqueeze(0)
        with torch.no_grad():
            out = self.network(x)
        cls_logits = out["cls"] / self.temperature
        prob = csb_gate(out["seg"], cls_logits, self.csb_mode, self.lesion_threshold)
        return Case(
            image=to_display(np.asarray(x[0])),
            label=to_display(np.asarray(data["label"][0]) > 0.5),
            mask=to_display(np.asarray(prob[0, 0]) > 0.5),
            cls_prob=torch.softmax(cls_logits, dim=1)[0].numpy(),
            cls_pred=int(predicted_class(cls_logits, self.lesion_threshold)[0]),
            input=x,
        )


def to_display(array: np.ndarray) -> np.ndarray:
    """Swaps the last two axes of a network-resolution array back to the file's (row, column) order."""
    return np.swapaxes(array, -1, -2)


def display_image(image: np.ndarray) -> np.ndarray:
    """A (C, H, W) network input as an (H, W, 3) RGB or (H, W) grey array in [0, 1] for ``imshow``."""
    img = image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0]
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
