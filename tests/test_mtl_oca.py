"""MTL-OCA: gradient-magnitude input channel, network, loss and the bundle override file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CONFIGS, run_bundle
from monai.bundle import ConfigParser
from monai.data import MetaTensor

from custom.losses.mtl_oca_loss import MTLOCALoss
from custom.networks import get_network
from custom.networks.mtl_oca import MTLOCA, ObjectContextualAttention
from custom.transforms.gradient import GradientMagnituded

OVERRIDE = CONFIGS / "peer_mtl_oca.json"
# narrow widths for wiring tests (faster on CPU); GroupNorm groups must divide them
SMALL = {"features": (8, 16, 32, 64), "num_groups": 4, "cls_hidden": 16}


# ---------------------------------------------------------------- GradientMagnituded
def step_image(size: int = 32) -> np.ndarray:
    """A vertical step edge: 0 left of column size/2, 1 from it on."""
    image = np.zeros((1, size, size), dtype=np.float32)
    image[..., size // 2 :] = 1.0
    return image


def test_gradient_channel_of_a_step_edge_peaks_at_the_edge():
    out = GradientMagnituded("image", sigma=1.0)({"image": step_image()})["image"]
    assert out.shape == (2, 32, 32) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], step_image()[0])  # the image channel is untouched
    magnitude = out[1]
    assert magnitude.min() >= 0.0 and magnitude.max() == pytest.approx(1.0)
    # the edge lies between columns 15 and 16: both get the maximum, every row alike
    np.testing.assert_allclose(magnitude[:, 15], 1.0, atol=1e-6)
    np.testing.assert_allclose(magnitude[:, 16], 1.0, atol=1e-6)
    assert magnitude[:, :10].max() < 1e-6 and magnitude[:, 22:].max() < 1e-6  # flat regions: no gradient
    # one pixel further out, by hand: the sampled Gaussian-derivative kernel (sigma 1, truncated at 4 sigma)
    # summed over the step gives sum_{j>=2} j exp(-j^2/2) / sum_{j>=1} j exp(-j^2/2) = 0.3348
    # (the continuous derivative of the Gaussian would give exp(-1) = 0.368)
    expected = sum(j * math.exp(-(j**2) / 2) for j in range(2, 5)) / sum(j * math.exp(-(j**2) / 2) for j in range(1, 5))
    np.testing.assert_allclose(magnitude[:, 14], expected, atol=1e-4)
    np.testing.assert_allclose(magnitude[:, 17], expected, atol=1e-4)


def test_gradient_keeps_tensor_type_and_metadata_and_handles_flat_images():
    image = MetaTensor(torch.from_numpy(step_image(16)), meta={"filename_or_obj": "case.png"})
    out = GradientMagnituded("image")({"image": image, "id": "case"})
    assert isinstance(out["image"], MetaTensor) and out["image"].meta["filename_or_obj"] == "case.png"
    assert out["image"].shape == (2, 16, 16) and out["image"].dtype == torch.float32 and out["id"] == "case"
    assert float(out["image"][1].max()) == pytest.approx(1.0)
    flat = GradientMagnituded("image")({"image": torch.full((1, 8, 8), 7, dtype=torch.uint8)})["image"]
    assert type(flat) is torch.Tensor and flat.dtype == torch.float32
    assert torch.equal(flat[1], torch.zeros(8, 8))  # no edge anywhere, and no division by zero


def test_gradient_rejects_multichannel_images_and_bad_sigma():
    with pytest.raises(ValueError, match="one channel"):
        GradientMagnituded("image")({"image": np.zeros((3, 8, 8), np.float32)})
    with pytest.raises(ValueError, match="sigma"):
        GradientMagnituded("image", sigma=0.0)


# ---------------------------------------------------------------- network
@pytest.mark.parametrize("num_classes", [2, 3])
def test_mtl_oca_outputs_in_train_and_eval_mode(num_classes):
    net = get_network("mtl_oca", num_classes=num_classes)
    assert isinstance(net, MTLOCA)
    x = torch.randn(2, 2, 64, 64)
    out = net.train()(x)
    assert set(out) == {"seg", "cls", "aux_seg"}
    assert out["seg"].shape == (2, 1, 64, 64) and out["cls"].shape == (2, num_classes)
    assert [a.shape for a in out["aux_seg"]] == [(2, 1, 64, 64)]
    with torch.no_grad():
        out = net.eval()(x)
    assert set(out) == {"seg", "cls"}
    assert out["seg"].shape == (2, 1, 64, 64) and out["cls"].shape == (2, num_classes)


def test_mtl_oca_builds_in_3d():
    out = MTLOCA(spatial_dims=3, **SMALL).eval()(torch.randn(1, 2, 16, 16, 16))
    assert out["seg"].shape == (1, 1, 16, 16, 16) and out["cls"].shape == (1, 2)


@pytest.mark.parametrize("spatial", [(12, 10), (6, 4, 8)])
def test_object_contextual_attention_shapes(spatial):
    block = ObjectContextualAttention(len(spatial), in_channels=8, key_channels=4, out_channels=12, num_groups=4)
    regions = torch.rand(2, 2, *spatial)
    assert block(torch.randn(2, 8, *spatial), regions).shape == (2, 12, *spatial)


def test_object_region_feature_is_the_region_weighted_mean():
    """Eq. 1 with regions normalised over the pixels: f_k is the mean feature of a hard region."""
    block = ObjectContextualAttention(2, in_channels=4, key_channels=4, out_channels=4, num_groups=2)
    x = torch.randn(1, 4, 6, 6)
    lesion = torch.zeros(1, 1, 6, 6)
    lesion[..., :2, :] = 1.0
    captured = {}
    block.delta.register_forward_hook(lambda module, inputs, output: captured.update(objects=inputs[0]))
    block(x, torch.cat([1 - lesion, lesion], dim=1))
    expected = torch.stack([x[..., 2:, :].mean(dim=(2, 3)), x[..., :2, :].mean(dim=(2, 3))], dim=2)
    torch.testing.assert_close(captured["objects"], expected, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- loss
def _batch(num_classes: int = 2, size: int = 32):
    torch.manual_seed(0)
    mask = torch.zeros(4, 1, size, size)
    mask[:2, :, 8:20, 10:24] = 1.0
    image = torch.cat([mask + 0.3 * torch.randn_like(mask), torch.rand_like(mask)], dim=1)
    cls = torch.tensor([1, num_classes - 1, 0, 0])
    return image, {"seg": mask, "cls": cls}


def test_loss_with_and_without_the_coarse_mask():
    _, target = _batch(3)
    pred = {"seg": torch.randn(4, 1, 32, 32), "cls": torch.randn(4, 3), "aux_seg": [torch.randn(4, 1, 32, 32)]}
    final = F.binary_cross_entropy_with_logits(pred["seg"], target["seg"])
    coarse = F.binary_cross_entropy_with_logits(pred["aux_seg"][0], target["seg"])
    cls = F.cross_entropy(pred["cls"], target["cls"])
    loss = MTLOCALoss()
    torch.testing.assert_close(loss(pred, target), final + 0.4 * coarse + cls)
    eval_pred = {"seg": pred["seg"], "cls": pred["cls"]}
    torch.testing.assert_close(loss(eval_pred, target), final + cls)
    # the prepare-batch class target may come as (B, 1)
    torch.testing.assert_close(loss(eval_pred, {**target, "cls": target["cls"][:, None]}), final + cls)
    assert list(loss.parameters()) == []  # nothing for the optimizer or the checkpoint to carry


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    net, loss_fn = MTLOCA(**SMALL), MTLOCALoss()
    image, target = _batch(size=16)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = loss_fn(net(image), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.95 * losses[0]


# ---------------------------------------------------------------- bundle override
def test_override_config_builds_the_paper_recipe(demo_dir):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(OVERRIDE)])
    parser.update({"dataset_dir": str(demo_dir)})
    assert isinstance(parser.get_parsed_content("network_def"), MTLOCA)
    assert isinstance(parser.get_parsed_content("loss"), MTLOCALoss)
    optimizer = parser.get_parsed_content("optimizer")
    assert type(optimizer).__name__ == "Adam" and [g["lr"] for g in optimizer.param_groups if g["params"]] == [1e-3]
    assert parser["epochs"] == 400 and parser["batch_size"] == 16 and parser["csb_mode"] == "off"
    record = parser.get_parsed_content("train#dataset#data")[0]
    sample = parser.get_parsed_content("train#preprocessing")(record)
    assert sample["image"].shape == (2, 128, 128) and sample["label"].shape == (1, 128, 128)
    assert not {"image_gray", "image_edges"} & set(sample)
    assert 0.0 <= float(sample["image"][1].min()) and float(sample["image"][1].max()) <= 1.0 + 1e-6
    validation = parser.get_parsed_content("validate#preprocessing")(record)
    assert float(validation["image"][1].max()) == pytest.approx(1.0)  # the gradient channel, scaled per image


@pytest.mark.slow
def test_bundle_trains_and_evaluates_mtl_oca_with_the_override_file(demo_dir, tmp_path):
    tiny = ["--spatial_size", "[64,64]", "--batch_size", "2", "--num_workers", "0"]
    configs = [str(CONFIGS / "train.json"), str(OVERRIDE)]
    run_bundle(
        "training", "--config_file", str(configs), "--epochs", "1",
        "--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path), *tiny,
    )  # fmt: skip
    assert (tmp_path / "model.pt").is_file()
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]
    assert math.isfinite(log[0]["train_loss"]) and math.isfinite(log[0]["val_loss"])
    run_bundle(
        "evaluating", "--config_file", str([*configs, str(CONFIGS / "evaluate.json")]),
        "--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path), *tiny,
    )  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n_images"] == len(json.loads((demo_dir / "fold0.json").read_text())["test"])
    assert {"classification", "segmentation"} <= set(metrics)
