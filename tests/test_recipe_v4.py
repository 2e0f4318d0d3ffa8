"""Recipe v4 (recipe_cpu_v4.json): N-Unet's classification head reading the decoder as well as the bottleneck."""

from __future__ import annotations

import json

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


def test_evaluation_and_inference_build_the_head_the_weights_were_trained_with(tmp_path):
    """A released decoder-head model runs through inference.json and evaluate.json without its recipe: the card
    (written by calibration) records the head's input, else the training run's record; the paper's head otherwise."""
    from generated import save_untrained_checkpoint

    from custom.checkpoints import TrainedModel, write_card
    from custom.errors import InputError

    carded = save_untrained_checkpoint(tmp_path / "carded.pt", classifier_input="decoder")
    write_card(carded, {"network": "nunet", "spatial_size": [32, 32], "classifier_input": "decoder"})
    for configs in (["inference.json"], ["train.json", "evaluate.json"]):
        parser = bundle_parser([str(CONFIGS / c) for c in configs], {"ckpt_path": str(carded)})
        network = TrainedModel(carded).load(parser.get_parsed_content("network_def"))  # the weights fit the head
        assert network.pooled_levels is not None
    run = tmp_path / "run"
    run.mkdir()
    trained = save_untrained_checkpoint(run / "model.pt", classifier_input="decoder")
    record = {
        "config": {"network_def": {"classifier_input": "@classifier_input"}},
        "resolved": {"classifier_input": "decoder"},
    }
    (run / "provenance.json").write_text(json.dumps({"runs": [record]}))
    assert TrainedModel(trained).classifier_input == "decoder"
    plain = save_untrained_checkpoint(tmp_path / "plain.pt")
    assert TrainedModel(plain).classifier_input == "bottleneck"
    with pytest.raises(InputError, match="classification heads read different inputs"):
        TrainedModel([carded, plain]).classifier_input


def test_a_released_decoder_head_model_infers_a_folder(tmp_path):
    """Through ONNX Runtime (the CPU default: the export must carry the pooled decoder levels) and through PyTorch,
    with the same decisions and probabilities."""
    from conftest import run_bundle
    from generated import picture, save_untrained_checkpoint
    from PIL import Image

    from custom.checkpoints import write_card

    images = tmp_path / "images"
    images.mkdir()
    for k in range(2):
        Image.fromarray(picture(k)).save(images / f"scan{k}.png")
    ckpt = save_untrained_checkpoint(tmp_path / "model.pt", classifier_input="decoder")
    write_card(
        ckpt, {"network": "nunet", "spatial_size": [32, 32], "classifier_input": "decoder", "lesion_threshold": 0.5}
    )
    results = {}
    for runtime in ("onnxruntime", "torch"):
        out = tmp_path / runtime
        run_bundle("--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(images), "--output_dir",
                   str(out), "--ckpt_path", str(ckpt), "--cpu_runtime", runtime)  # fmt: skip
        results[runtime] = [json.loads((out / f"scan{k}.json").read_text()) for k in range(2)]
    for onnx, eager in zip(results["onnxruntime"], results["torch"]):
        assert onnx["predicted_class"] == eager["predicted_class"]
        assert onnx["lesion_probability"] == pytest.approx(eager["lesion_probability"], abs=1e-6)
