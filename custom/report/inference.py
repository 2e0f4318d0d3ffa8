"""Re-running a fold's saved model on one test case, at the network resolution.

The network and the deterministic preprocessing are built from the run's own bundle configs and
overrides, so the drawn image, label and prediction are exactly what the evaluation saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser

from custom.deploy.loading import load_model_weights
from custom.networks.csb import csb_gate

from .runs import Run


@dataclass
class Case:
    """A preprocessed test case and the model's outputs on it.

    The 2-D arrays are in the image file's row/column order: MONAI's PIL reader loads a PNG as (W, H),
    so they are the network's arrays transposed back, all the same way so contours stay aligned.

    Attributes:
        image: (C, H, W) network input, ``label``: (H, W) binary ground truth, ``mask``: (H, W) CSB-gated
        binary prediction, ``cls_prob``: class probabilities, ``input``: the (1, C, H, W) batch fed to the network.
    """

    image: np.ndarray
    label: np.ndarray
    mask: np.ndarray
    cls_prob: np.ndarray
    input: torch.Tensor


class FoldModel:
    """The network of ``fold<k>/model.pt`` with the preprocessing of the run's configs.

    Args:
        run: the run.
        fold: the fold whose model and test split are used.
    """

    def __init__(self, run: Run, fold: int) -> None:
        parser = ConfigParser()
        parser.read_config([str(Path(f)) for f in run.meta["config_files"]])
        parser.update(dict(run.meta.get("overrides", {})))
        # point the config at the run's data, or its default would build the demo dataset
        parser["dataset_dir"] = str(run.data_dir)
        self.run, self.fold = run, fold
        self.csb_mode = str(parser["csb_mode"])
        self.preprocessing = parser.get_parsed_content("validate#preprocessing")
        self.network = parser.get_parsed_content("network_def")
        load_model_weights(self.network, run.fold_dir(fold) / "model.pt").eval()

    def predict(self, image_id: str) -> Case:
        """Preprocesses the test record ``image_id`` and runs the network on it with CSB."""
        data = self.preprocessing(self.run.test_record(self.fold, image_id))
        # a plain tensor: MetaTensor metadata breaks the arithmetic of monai.visualize.GradCAM
        x = torch.as_tensor(np.asarray(data["image"]), dtype=torch.float32).unsqueeze(0)
        with torch.no_grad():
            out = self.network(x)
        prob = csb_gate(out["seg"], out["cls"], self.csb_mode)
        return Case(
            image=to_display(np.asarray(x[0])),
            label=to_display(np.asarray(data["label"][0]) > 0.5),
            mask=to_display(np.asarray(prob[0, 0]) > 0.5),
            cls_prob=torch.softmax(out["cls"], dim=1)[0].numpy(),
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
