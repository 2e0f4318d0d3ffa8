"""Recipe v4 (recipe_cpu_v4.json): N-Unet's classification head reading the decoder as well as the bottleneck."""

from __future__ import annotations

import pytest
import torch
from conftest import CONFIGS

from custom.configs import bundle_parser
from custom.networks import get_network
from custom.networks.blocks import PooledLevels

RECIPE = [str(CONFIGS / "train.json"), *(str(CONFIGS / f"recipe_cpu_v{v}.json") for v in (2, 4))]
SMALL = (4, 8, 16, 32)


def test_pooled_levels_concatenates_each_levels_channel_means():
    levels = [torch.rand(2, 3, 8, 8), torch.rand(2, 5, 4, 4)]
    pooled = PooledLevels(2)(levels)
    assert pooled.shape == (2, 8, 1, 1)
    torch.testing.assert_close(pooled.flatten(1), torch.cat([f.mean((2, 3)) for f in levels], dim=1))


@pytest.mark.parametrize("classifier_input, decoder_shapes_the_call", [("bottleneck", False), ("decoder", True)])
def test_the_lesion_call_reads_the_decoder_only_where_asked(classifier_input, decoder_shapes_the_call):
    torch.manual_seed(0)
    net = get_network("nunet", in_channels=3, num_classes=2, features=SMALL, classifier_input=classifier_input)
    net(torch.rand(2, 3, 32, 32))["cls"].sum().backward()
    decoder_grads = [p.grad for p in net.decoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in decoder_grads) == decoder_shapes_the_call
    # the head's input width: the bottleneck (32), or the bottleneck and the three decoder stages (32 + 16 + 8 + 4)
    assert net.classification_head.fc1.in_features == (60 if decoder_shapes_the_call else 32)


def test_the_bottleneck_head_keeps_the_released_checkpoint_format():
    # a PooledLevels with nothing to pool must not appear in (or be demanded by) a released state dict
    plain = get_network("nunet", in_channels=3, num_classes=2, features=SMALL)
    assert plain.pooled_levels is None
    assert not any(key.startswith("pooled_levels") for key in plain.state_dict())


def test_recipe_v4_builds_the_decoder_reading_head_for_70_epochs():
    parser = bundle_parser(RECIPE, {"device": "$torch.device('cpu')"})
    assert parser.get_parsed_content("epochs") == 70
    network = parser.get_parsed_content("network_def")
    assert network.pooled_levels is not None
    assert network.classification_head.fc1.in_features == 512 + 256 + 128 + 64 + 32
    out = network.eval()(torch.rand(1, 3, 96, 96))
    assert out["cls"].shape == (1, 2) and out["seg"].shape == (1, 1, 96, 96)
