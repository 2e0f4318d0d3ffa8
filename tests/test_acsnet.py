"""ACSNet: deformable convolution, network shapes and size, loss, and a training run through the bundle."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import CONFIGS, run_bundle
from monai.bundle import ConfigWorkflow
from monai.networks.nets import ResNet

from custom.errors import InputError
from custom.losses.acsnet_loss import ACSNetLoss, VGG16Features
from custom.networks import get_network
from custom.networks.acsnet import ACSNet, DSAModule, GateUnit, PooledChannelAttention
from custom.networks.deform import DeformConv2d, deform_conv2d
from custom.networks.stats import count_parameters

PAPER_PARAMS = 42.99e6
PEER_CONFIG = CONFIGS / "peer_acsnet.json"
# torchvision's vgg16 "features" layout: convolution widths, "M" = max pool
VGG16_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


# ---------------------------------------------------------------- deformable convolution
@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2)])
def test_deform_conv_with_zero_offsets_is_a_plain_convolution(stride, dilation):
    torch.manual_seed(0)
    deform = DeformConv2d(4, 6, 3, stride=stride, dilation=dilation)
    conv = nn.Conv2d(4, 6, 3, stride=stride, padding=deform.padding, dilation=dilation)
    conv.load_state_dict({"weight": deform.weight, "bias": deform.bias})
    x = torch.randn(2, 4, 11, 9)
    assert torch.count_nonzero(deform.offset(x)) == 0  # offsets start at zero
    torch.testing.assert_close(deform(x), conv(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("dy", "dx", "pad"),
    [
        # sampling one row lower: rows i..i+2 instead of i-1..i+1, zeros beyond the bottom edge
        (1.0, 0.0, (1, 1, 0, 2)),
        # two columns to the left: columns j-3..j-1
        (0.0, -2.0, (3, -1, 1, 1)),
    ],
)
def test_deform_conv_integer_offset_shifts_the_sampling_grid(dy, dx, pad):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 7)
    weight, bias = torch.randn(5, 4, 3, 3), torch.randn(5)
    offset = torch.zeros(2, 18, 9, 7)
    offset[:, 0::2], offset[:, 1::2] = dy, dx
    expected = F.conv2d(F.pad(x, pad), weight, bias)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, bias, padding=1), expected, atol=1e-5, rtol=1e-5)


def test_deform_conv_half_pixel_offset_interpolates_bilinearly():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 8)
    weight = torch.randn(2, 3, 3, 3)
    offset = torch.zeros(1, 18, 8, 8)
    offset[:, 1::2] = 0.5
    # half way between the regular grid and the grid one column to the right
    expected = 0.5 * (F.conv2d(F.pad(x, (1, 1, 1, 1)), weight) + F.conv2d(F.pad(x, (0, 2, 1, 1)), weight))
    torch.testing.assert_close(deform_conv2d(x, offset, weight, padding=1), expected, atol=1e-5, rtol=1e-5)


def test_deform_conv_gradients_match_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    # fractional offsets keep every sample away from the kinks of bilinear interpolation at integers
    offset = (torch.rand(1, 18, 5, 4, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *args: deform_conv2d(*args, padding=1), (x, offset, weight, bias))


def test_deform_conv_learns_its_offsets():
    torch.manual_seed(0)
    deform = DeformConv2d(3, 4)
    deform(torch.randn(2, 3, 8, 8)).square().sum().backward()
    assert deform.offset.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="offset must have shape"):
        deform_conv2d(torch.randn(1, 3, 8, 8), torch.zeros(1, 8, 8, 8), deform.weight)


# ---------------------------------------------------------------- blocks and network
@pytest.mark.parametrize(
    ("block", "shape"),
    [
        (GateUnit(2, 64), (2, 64, 16, 16)),
        (DSAModule(32), (2, 32, 8, 8)),
        (PooledChannelAttention(2, 64), (2, 64, 8, 8)),
    ],
)
def test_blocks_keep_the_feature_shape(block, shape):
    assert block(torch.randn(shape)).shape == shape


@pytest.mark.parametrize("num_classes", [2, 3])
def test_acsnet_outputs_logits_at_input_resolution(num_classes):
    torch.manual_seed(0)
    net = get_network("acsnet", num_classes=num_classes)
    assert isinstance(net, ACSNet)
    with torch.no_grad():  # training mode (may add aux outputs), no gradients needed for shapes
        out = net(torch.randn(2, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"seg": (2, 1, 64, 64), "cls": (2, num_classes)}
    net.eval()
    with torch.no_grad():
        assert set(net(torch.randn(1, 3, 72, 56))) == {"seg", "cls"}


def test_acsnet_parameter_count_is_within_15_percent_of_the_paper():
    params = count_parameters(ACSNet())
    assert abs(params - PAPER_PARAMS) / PAPER_PARAMS < 0.15, params


def test_acsnet_rejects_3d_and_bad_pretrained_files(tmp_path):
    with pytest.raises(ValueError, match="spatial_dims=2"):
        ACSNet(spatial_dims=3)
    with pytest.raises(InputError, match="does not exist"):
        ACSNet(pretrained_path=str(tmp_path / "missing.pt"))
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "partial.pt")
    with pytest.raises(InputError, match="not a torchvision-layout ResNet-18"):
        ACSNet(pretrained_path=str(tmp_path / "partial.pt"))


def test_acsnet_loads_a_local_resnet18_state_dict(tmp_path):
    torch.manual_seed(1)
    resnet = ResNet("basic", [2, 2, 2, 2], [64, 128, 256, 512], spatial_dims=2, conv1_t_stride=2, bias_downsample=False)
    weights = resnet.state_dict()  # torchvision's resnet18 key names, classifier "fc.*" included
    torch.save(weights, tmp_path / "resnet18.pt")
    net = ACSNet(pretrained_path=str(tmp_path / "resnet18.pt"))
    torch.testing.assert_close(net.encoder.stages[0][0].weight, weights["conv1.weight"])
    torch.testing.assert_close(net.encoder.stages[4][1].conv2.weight, weights["layer4.1.conv2.weight"])


# ---------------------------------------------------------------- loss
def _batch(size: int = 32) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    mask = torch.zeros(2, 1, size, size)
    mask[0, :, size // 4 : size // 2, size // 4 : size // 2] = 1
    return torch.randn(2, 3, size, size), {"seg": mask, "cls": torch.tensor([[1], [0]])}


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A randomly initialised VGG-16 state dict in torchvision's layout (the real one cannot be downloaded)."""
    torch.manual_seed(0)
    layers, in_channels = [], 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.ReLU()]
            in_channels = item
    features = nn.Sequential(*layers)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pt"
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(state, path)
    return path, features


def test_vgg16_features_are_the_relu_outputs_of_torchvision_layout(vgg_file):
    path, reference = vgg_file
    x = torch.randn(1, 3, 32, 32)
    taps = {3, 8, 15, 22}  # relu1_2, relu2_2, relu3_3, relu4_3
    expected = []
    y = x
    for index, layer in enumerate(reference[:23]):
        y = layer(y)
        if index in taps:
            expected.append(y)
    features = VGG16Features(str(path))
    assert list(features.parameters()) == [] and features.state_dict() == {}
    for got, want in zip(features(x), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_loss_with_and_without_perceptual_term(vgg_file):
    _, target = _batch()
    pred = {"seg": torch.randn(2, 1, 32, 32), "cls": torch.randn(2, 2)}
    plain = ACSNetLoss()
    expected = 0.3 * F.cross_entropy(pred["cls"], torch.tensor([1, 0])) + 0.7 * plain.dice(pred["seg"], target["seg"])
    torch.testing.assert_close(plain(pred, target), expected)
    # extra training-only outputs are ignored: the same loss serves the validation loss on eval outputs
    torch.testing.assert_close(plain({**pred, "aux_seg": [pred["seg"]]}, target), expected)
    torch.testing.assert_close(plain(pred, {"seg": target["seg"], "cls": target["cls"].flatten()}), expected)

    with_vgg = ACSNetLoss(vgg_weights=str(vgg_file[0]))
    assert list(with_vgg.parameters()) == []
    perceptual = with_vgg.perceptual(pred["seg"], target["seg"])
    assert perceptual > 0
    torch.testing.assert_close(with_vgg(pred, target), expected + 0.7 * 0.2 * perceptual)
    # a prediction equal to the mask has no perceptual difference
    exact = (target["seg"] * 2 - 1) * 100
    assert with_vgg.perceptual(exact, target["seg"]) < 1e-6


def test_acsnet_learns_a_fixed_batch():
    image, target = _batch()
    torch.manual_seed(0)
    net = ACSNet(decoder_channels=(64, 64, 32, 32))
    loss_fn = ACSNetLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = loss_fn(net(image), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0], losses


# ---------------------------------------------------------------- bundle
def test_peer_config_has_every_property_monai_tools_need(demo_dir, tmp_path):
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "train.json"), str(PEER_CONFIG)],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        workflow_type="train",
        dataset_dir=str(demo_dir),
        output_dir=str(tmp_path),
    )
    workflow.initialize()
    assert workflow.check_properties() == []
    assert workflow.parser.get_parsed_content("network_def#name") == "acsnet"
    optimizer = workflow.parser.get_parsed_content("optimizer")
    assert optimizer.defaults["betas"] == (0.9, 0.99) and optimizer.defaults["weight_decay"] == 1e-4


@pytest.mark.slow
def test_acsnet_trains_and_evaluates_through_the_bundle(demo_dir, tmp_path):
    configs = f"['{CONFIGS / 'train.json'}','{PEER_CONFIG}']"
    # narrow decoder: this checks the bundle wiring; the paper's widths are tested above
    tiny = [
        "--spatial_size",
        "[64,64]",
        "--batch_size",
        "2",
        "--num_workers",
        "0",
        "--network_def#decoder_channels",
        "[64,64,32,32]",
    ]
    common = ["--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path), *tiny]
    run_bundle("training", "--config_file", configs, "--epochs", "1", *common)
    assert (tmp_path / "model.pt").is_file()
    record = json.loads((tmp_path / "train_log.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 1 and record["val_loss"] >= 0
    evaluate = f"['{CONFIGS / 'train.json'}','{PEER_CONFIG}','{CONFIGS / 'evaluate.json'}']"
    run_bundle("evaluating", "--config_file", evaluate, *common)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n_images"] == len(json.loads((demo_dir / "fold0.json").read_text())["test"])
