"""Networks: block shapes and equations, N-Unet outputs, ablation switches, CSB, size budget, TorchScript."""

from __future__ import annotations

import pytest
import torch

from custom.networks import (
    ABLATIONS,
    CSB_MODES,
    NETWORKS,
    ConditionalSegmentationBoost,
    NUNet,
    SegmentationWithCSB,
    csb_gate,
    get_network,
    lesion_probability,
)
from custom.networks.blocks import (
    CBAM,
    AdaptiveFeatureFusion,
    AttentionGate,
    ChannelAttention,
    ConvBNReLU,
    CrossLevelAttention,
    DepthwiseSeparableConv,
    DoubleConv,
    SpatialAttention,
    SqueezeExcitation,
)
from custom.networks.stats import count_parameters, model_stats

# known deprecations of the tools under test (TorchScript export is what MONAI's ckpt_export uses)
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.(script|interface)` is deprecated"),
    pytest.mark.filterwarnings("ignore:distutils Version classes are deprecated"),  # thop
]

torch.manual_seed(0)

# plain U-Net 32..512 (4 max-pools, ConvTranspose k2 s2) under THOP, and the 512->1024->2 head
PLAIN_UNET_PARAMS = 7_765_985
HEAD_PARAMS = 512 * 1024 + 1024 + 1024 * 2 + 2
# narrow widths for tests of wiring rather than of the paper's configuration (faster on CPU)
SMALL = (8, 16, 32, 64, 128)


# ---------------------------------------------------------------- blocks
@pytest.mark.parametrize(
    "block, inputs, expected",
    [
        (ConvBNReLU(2, 3, 8), [(2, 3, 16, 16)], (2, 8, 16, 16)),
        (ConvBNReLU(2, 3, 8, strides=2), [(2, 3, 16, 16)], (2, 8, 8, 8)),
        (DoubleConv(2, 3, 8), [(2, 3, 16, 16)], (2, 8, 16, 16)),
        (DepthwiseSeparableConv(2, 8, 16), [(2, 8, 16, 16)], (2, 16, 16, 16)),
        (DepthwiseSeparableConv(2, 8, 16, strides=2), [(2, 8, 16, 16)], (2, 16, 8, 8)),
        (SqueezeExcitation(2, 32), [(2, 32, 8, 8)], (2, 32, 8, 8)),
        (ChannelAttention(2, 32), [(2, 32, 8, 8)], (2, 32, 8, 8)),
        (SpatialAttention(2), [(2, 32, 8, 8)], (2, 32, 8, 8)),
        (CBAM(2, 32), [(2, 32, 8, 8)], (2, 32, 8, 8)),
        (AttentionGate(2, 32, 24, 16), [(2, 32, 8, 8), (2, 24, 8, 8)], (2, 32, 8, 8)),
        (CrossLevelAttention(2, 32, 32, 16), [(2, 32, 8, 8), (2, 32, 8, 8)], (2, 32, 8, 8)),
        # side branch at twice the resolution of the main feature, as in the encoder
        (AdaptiveFeatureFusion(2, 16, 32, 8), [(2, 16, 16, 16), (2, 32, 8, 8)], (2, 32, 8, 8)),
        (AdaptiveFeatureFusion(3, 4, 8, 2), [(1, 4, 8, 8, 8), (1, 8, 4, 4, 4)], (1, 8, 4, 4, 4)),
        (CBAM(3, 16), [(1, 16, 4, 4, 4)], (1, 16, 4, 4, 4)),
    ],
)
def test_block_output_shape(block, inputs, expected):
    with torch.no_grad():
        out = block.eval()(*(torch.randn(*shape) for shape in inputs))
    assert tuple(out.shape) == expected


def test_depthwise_separable_structure():
    block = DepthwiseSeparableConv(2, 8, 16)
    assert block.depthwise.groups == 8 and tuple(block.depthwise.weight.shape) == (8, 1, 3, 3)
    assert tuple(block.pointwise.weight.shape) == (16, 8, 1, 1)


def test_squeeze_excitation_matches_eq_3_to_5():
    se = SqueezeExcitation(2, 64).eval()
    fc1, fc2 = se.fc[0], se.fc[2]
    assert (fc1.in_features, fc1.out_features, fc2.out_features) == (64, 4, 64)  # reduction 16
    x = torch.randn(2, 64, 5, 5)
    z = x.mean(dim=(2, 3))
    s = torch.sigmoid(fc2(torch.relu(fc1(z))))
    torch.testing.assert_close(se(x), x * s[:, :, None, None])


def test_channel_attention_shares_the_mlp_eq_9_to_11():
    ca = ChannelAttention(2, 32).eval()
    x = torch.randn(2, 32, 6, 6)
    s = torch.sigmoid(ca.mlp(x.mean(dim=(2, 3))) + ca.mlp(x.amax(dim=(2, 3))))
    torch.testing.assert_close(ca(x), x * s[:, :, None, None])
    assert ca.mlp[0].out_features == 2


def test_spatial_attention_eq_12_to_13():
    sa = SpatialAttention(2).eval()
    assert tuple(sa.conv.weight.shape) == (1, 2, 7, 7)
    x = torch.randn(2, 8, 9, 9)
    m = torch.sigmoid(sa.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
    torch.testing.assert_close(sa(x), x * m)


def test_attention_gate_eq_14_to_15():
    ag = AttentionGate(2, 16, 12, 8).eval()
    xs, xu = torch.randn(2, 16, 6, 6), torch.randn(2, 12, 6, 6)
    alpha = torch.sigmoid(ag.w_alpha(torch.relu(ag.w_skip(xs) + ag.w_gate(xu))))
    assert alpha.shape == (2, 1, 6, 6)
    torch.testing.assert_close(ag(xs, xu), xs * alpha)


# ---------------------------------------------------------------- N-Unet
@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_nunet_outputs(num_classes, in_channels):
    net = NUNet(in_channels=in_channels, num_classes=num_classes).eval()
    with torch.no_grad():
        out = net(torch.randn(2, in_channels, 64, 64))
    assert set(out) == {"seg", "cls"}
    assert out["seg"].shape == (2, 1, 64, 64)
    assert out["cls"].shape == (2, num_classes)


@pytest.mark.parametrize("task, keys", [("seg", {"seg"}), ("cls", {"cls"}), ("multi", {"seg", "cls"})])
def test_nunet_task_builds_only_its_heads(task, keys):
    net = NUNet(features=SMALL, task=task).eval()
    with torch.no_grad():
        assert set(net(torch.randn(1, 3, 64, 64))) == keys
    assert (net.decoder is None) == (task == "cls")
    assert (net.segmentation_head is None) == (task == "cls")
    assert (net.classification_head is None) == (task == "seg")
    assert net.csb.mode == ("hard" if task == "multi" else "off")


def test_nunet_3d():
    net = NUNet(spatial_dims=3, in_channels=1, features=(4, 8, 16)).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 1, 16, 16, 16))
    assert out["seg"].shape == (1, 1, 16, 16, 16) and out["cls"].shape == (1, 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task": "both"},
        {"csb_mode": "gate"},
        {"num_classes": 1},
        {"features": (32,)},
        {"classifier_input": "encoder"},
        {"classifier_input": "decoder", "task": "cls"},
    ],
)
def test_nunet_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        NUNet(**kwargs)


def test_registry():
    assert isinstance(get_network("nunet", num_classes=3), NUNet)
    with pytest.raises(ValueError, match="registered networks: .*nunet"):
        get_network("nounet")
    assert set(NETWORKS) >= {"nunet"}


# ---------------------------------------------------------------- ablations
def _graph(net: torch.nn.Module) -> tuple:
    """What an ablation switch may change: module types, parameter names, parameter count, CSB mode."""
    return (
        frozenset(type(m).__name__ for m in net.modules()),
        frozenset(name for name, _ in net.named_parameters()),
        count_parameters(net),
        net.csb.mode,
    )


@pytest.fixture(scope="module")
def ablation_graphs() -> dict[str, tuple]:
    """Every ablation built once (which also shows each entry is valid constructor kwargs)."""
    return {name: _graph(get_network("nunet", **switches)) for name, switches in ABLATIONS.items()}


def test_ablations_cover_the_paper_variants():
    table_7 = {"unet_cls", "csb", "aff", "clae", "csb_aff", "csb_clae", "aff_clae", "full"}
    assert set(ABLATIONS) >= table_7 | {"csb_off", "csb_soft", "seg_only", "cls_only"}


def test_every_ablation_is_a_different_network(ablation_graphs):
    graphs = ablation_graphs
    # "csb_off" is documented as the same network as Table 7's "aff_clae"
    assert graphs["csb_off"] == graphs["aff_clae"]
    distinct = {g for name, g in graphs.items() if name != "csb_off"}
    assert len(distinct) == len(ABLATIONS) - 1


def test_ablation_switches_add_their_modules(ablation_graphs):
    types = {name: graph[0] for name, graph in ablation_graphs.items()}
    for name, switches in ABLATIONS.items():
        assert ("AdaptiveFeatureFusion" in types[name]) == switches["aff"], name
        has_decoder = switches["task"] != "cls"
        assert ("CrossLevelAttention" in types[name]) == (switches["clae"] and has_decoder), name
        assert ("NUNetDecoder" in types[name]) == has_decoder, name
        assert ("ClassificationHead" in types[name]) == (switches["task"] != "seg"), name


def test_plain_variant_is_the_plain_unet_plus_head(ablation_graphs):
    assert ablation_graphs["unet_cls"][2] == PLAIN_UNET_PARAMS + HEAD_PARAMS
    assert ablation_graphs["seg_only"][2] == ablation_graphs["full"][2] - HEAD_PARAMS


# ---------------------------------------------------------------- CSB
# 2 classes (normal, lesion): rows 0 and 2 are predicted normal
CLS2 = torch.tensor([[3.0, -1.0], [-1.0, 2.0], [0.5, 0.4], [0.0, 0.1]])
# 3 classes (normal, benign, malignant): row 3 is predicted normal although 1 - p(normal) > 0.5
CLS3 = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 1.0, 3.0], [1.0, 0.9, 0.8]])


@pytest.mark.parametrize("cls_logits, normal_rows", [(CLS2, [0, 2]), (CLS3, [0, 3])])
def test_csb_hard_zeroes_exactly_the_images_predicted_normal(cls_logits, normal_rows):
    seg = torch.randn(4, 1, 8, 8)
    out = csb_gate(seg, cls_logits, "hard")
    prob = torch.sigmoid(seg)
    for i in range(4):
        if i in normal_rows:
            assert torch.count_nonzero(out[i]) == 0
        else:
            assert torch.equal(out[i], prob[i])  # bit-identical, not merely close


@pytest.mark.parametrize("cls_logits", [CLS2, CLS3])
def test_csb_soft_scales_by_lesion_probability(cls_logits):
    seg = torch.randn(4, 1, 8, 8)
    lesion = 1.0 - torch.softmax(cls_logits, dim=1)[:, 0]
    torch.testing.assert_close(csb_gate(seg, cls_logits, "soft"), torch.sigmoid(seg) * lesion.view(4, 1, 1, 1))


def test_lesion_probability_values():
    logits = torch.tensor([[0.0, torch.log(torch.tensor(3.0))], [0.0, 0.0]])
    torch.testing.assert_close(lesion_probability(logits), torch.tensor([0.75, 0.5]))
    # three classes: everything that is not class 0 counts as lesion
    torch.testing.assert_close(lesion_probability(torch.zeros(1, 3)), torch.tensor([2.0 / 3.0]))
    seg = torch.zeros(2, 1, 4, 4)  # sigmoid = 0.5 everywhere
    torch.testing.assert_close(csb_gate(seg, logits, "soft")[:, 0, 0, 0], torch.tensor([0.375, 0.25]))


def test_csb_off_is_sigmoid_and_works_in_3d():
    seg = torch.randn(2, 1, 4, 4, 4)
    assert torch.equal(csb_gate(seg, CLS2[:2], "off"), torch.sigmoid(seg))
    assert torch.count_nonzero(csb_gate(seg, CLS2[:2], "hard")[0]) == 0


def test_csb_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'hardd'.*'hard', 'soft', 'off'"):
        csb_gate(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2), "hardd")
    with pytest.raises(ValueError, match="'Hard'.*'hard', 'soft', 'off'"):
        ConditionalSegmentationBoost("Hard")
    assert CSB_MODES == ("hard", "soft", "off")


def test_csb_module_has_no_parameters():
    csb = ConditionalSegmentationBoost("soft")
    assert count_parameters(csb) == 0
    seg = torch.randn(4, 1, 8, 8)
    assert torch.equal(csb(seg, CLS2), csb_gate(seg, CLS2, "soft"))


def test_segmentation_with_csb():
    net = NUNet(features=SMALL, csb_mode="soft").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = net(x)
        gated = SegmentationWithCSB(net).eval()(x)  # mode taken from the network
        hard = SegmentationWithCSB(net, mode="hard").eval()(x)
        seg_only = SegmentationWithCSB(NUNet(features=SMALL, task="seg").eval(), mode="hard")(x)
    assert gated.shape == (2, 1, 64, 64)
    torch.testing.assert_close(gated, csb_gate(out["seg"], out["cls"], "soft"))
    torch.testing.assert_close(hard, csb_gate(out["seg"], out["cls"], "hard"))
    assert seg_only.shape == (2, 1, 64, 64) and bool(((seg_only > 0) & (seg_only < 1)).all())  # plain sigmoid


# ---------------------------------------------------------------- size budget (the paper's totals)
def test_full_model_matches_paper_size_and_thop_macs():
    stats = model_stats("nunet", (1, 3, 256, 256))
    assert stats["params"] == pytest.approx(8.95e6, rel=0.03)
    assert stats["macs"] == pytest.approx(14.74e9, rel=0.03)


def test_stats_leave_the_network_clean():
    from custom.networks.stats import thop_macs

    net = NUNet(features=(8, 16, 32))
    assert thop_macs(net, (1, 3, 32, 32)) > 0
    assert not [name for name, _ in net.named_buffers() if name.endswith(("total_ops", "total_params"))]
    assert net.training  # profiling ran on a copy in eval mode


# ---------------------------------------------------------------- TorchScript
@pytest.mark.parametrize(
    "task, classifier_input",
    [("multi", "bottleneck"), ("multi", "decoder"), ("seg", "bottleneck"), ("cls", "bottleneck")],
)
def test_nunet_scripts_and_matches_eager(task, classifier_input):
    net = NUNet(features=SMALL, task=task, num_classes=3, classifier_input=classifier_input).eval()
    scripted = torch.jit.script(net)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        eager, script = net(x), scripted(x)
    assert set(eager) == set(script)
    for key in eager:
        torch.testing.assert_close(script[key], eager[key])


@pytest.mark.parametrize("mode", CSB_MODES)
def test_segmentation_with_csb_scripts_and_matches_eager(mode):
    wrapper = SegmentationWithCSB(NUNet(features=SMALL), mode=mode).eval()
    scripted = torch.jit.script(wrapper)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), wrapper(x))


def test_get_network_starts_from_a_checkpoints_weights(tmp_path):
    """``--network_def#weights <model.pt>``: fine-tuning the released model starts from its weights."""
    from custom.errors import InputError
    from custom.networks import get_network

    small = {"in_channels": 3, "num_classes": 2, "features": (8, 16, 32, 64, 128)}
    trained = get_network("nunet", **small)
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    started = get_network("nunet", weights=str(tmp_path / "model.pt"), **small)
    for name, value in trained.state_dict().items():
        assert torch.equal(started.state_dict()[name], value), name
    with pytest.raises(InputError, match="does not exist"):
        get_network("nunet", weights=str(tmp_path / "missing.pt"), **small)
    with pytest.raises(InputError, match="has shape .* where this network has"):  # another width
        get_network("nunet", weights=str(tmp_path / "model.pt"), in_channels=3, num_classes=2)
