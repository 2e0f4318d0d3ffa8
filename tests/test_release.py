"""The released model: float16 weights loading into the float32 network; a card trusted only for its own weights."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CONFIGS

from custom.checkpoints import TrainedModel, load_model_weights, read_card
from custom.configs import bundle_parser
from custom.deploy.release import check_half_storage, write_release
from custom.errors import InputError
from custom.networks import get_network


def _network(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_network("nunet", features=(8, 16, 32, 64, 128)).eval()


def test_release_stores_float16_weights_that_load_safely_into_the_float32_network(tmp_path):
    network = _network()
    card = write_release(network, tmp_path, {"network": "nunet", "spatial_size": [96, 96]})
    weights = tmp_path / "model.pt"
    state = torch.load(weights, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    fp32_bytes = sum(v.numel() * 4 for v in network.state_dict().values() if v.is_floating_point())
    assert weights.stat().st_size < 0.6 * fp32_bytes
    loaded = load_model_weights(_network(seed=1), weights)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert json.loads((tmp_path / "model.json").read_text()) == card and card["weights"]["dtype"] == "float16"


def test_half_storage_check_compares_masks_and_decisions():
    network = _network()
    report = check_half_storage(network, [torch.rand(2, 3, 32, 32) for _ in range(2)])
    assert report["images"] == 4 and report["decision_agreement"] == 1.0
    assert report["mask_dice_mean"] > 0.99 and 0 < report["max_abs_logit_change"] < 0.05


def test_inference_runs_the_released_model_at_its_recorded_size_and_other_weights_at_the_config_size(tmp_path):
    write_release(_network(), tmp_path, {"network": "nunet", "spatial_size": [96, 96]})
    ckpt = tmp_path / "model.pt"
    assert TrainedModel(ckpt, [256, 256]).spatial_size == [96, 96]
    parser = bundle_parser(str(CONFIGS / "inference.json"), {"ckpt_path": str(ckpt)})
    assert parser.get_parsed_content("spatial_size") == [96, 96]
    # retrained in place, or damaged: the card no longer describes the weights, which are refused rather than run
    # without it (with a warning, before); once the stale card is removed they run at the config's size
    torch.save(_network(seed=2).state_dict(), ckpt)
    with pytest.raises(InputError, match="its SHA-256 is not the one its model card .* records"):
        TrainedModel(ckpt, [256, 256])
    (tmp_path / "model.json").unlink()
    assert read_card(ckpt) is None and TrainedModel(ckpt, [256, 256]).spatial_size == [256, 256]
    with pytest.raises(InputError, match="missing.pt' does not exist"):
        TrainedModel(tmp_path / "missing.pt", [128, 128])


def test_evaluation_reads_the_input_size_from_the_card_as_inference_does(tmp_path):
    """Evaluating the released model (96x96) without ``--spatial_size`` ran it at train.json's 256x256 (test Dice
    0.449 instead of 0.662, a warning and exit status 0)."""
    write_release(_network(), tmp_path, {"network": "nunet", "spatial_size": [96, 96]})
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    parser = bundle_parser(configs, {"ckpt_path": str(tmp_path / "model.pt")})
    assert parser.get_parsed_content("spatial_size") == [96, 96]
    assert bundle_parser(
        configs, {"ckpt_path": str(tmp_path / "model.pt"), "spatial_size": [64, 64]}
    ).get_parsed_content("spatial_size") == [64, 64]


def test_one_input_size_rule_an_explicit_other_size_is_used_with_one_warning(tmp_path, caplog):
    """Inference ran an explicit --spatial_size without a word, evaluation warned: both now take the card's size
    unless --spatial_size asks for another, which is used with one warning."""
    from conftest import run_bundle
    from generated import picture, save_untrained_checkpoint
    from PIL import Image

    from custom.checkpoints import write_card

    weights = save_untrained_checkpoint(tmp_path / "model.pt")
    write_card(weights, {"spatial_size": [32, 32]})
    warning = "was trained at [32, 32] and is run at [64, 64] (--spatial_size)"
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    parser = bundle_parser(configs, {"ckpt_path": str(weights), "spatial_size": [64, 64]})
    with caplog.at_level("WARNING", logger="nunet"):
        parser.get_parsed_content(f"initialize#{len(parser['initialize']) - 1}")  # evaluate.json's check
    assert caplog.text.count(warning) == 1
    # the bundle run configures logging from logging.conf (disabling the loggers that exist): after the check
    (tmp_path / "in").mkdir()
    Image.fromarray(picture()).save(tmp_path / "in" / "a.png")
    for size, warnings in (("[32,32]", 0), ("[64,64]", 1)):
        proc = run_bundle("--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(tmp_path / "in"),
                          "--output_dir", str(tmp_path / size), "--ckpt_path", str(weights), "--spatial_size", size,
                          "--cpu_runtime", "torch")  # fmt: skip
        assert (proc.stdout + proc.stderr).count(warning) == warnings and (tmp_path / size / "a.json").is_file()


def test_a_release_records_the_head_its_run_trained_so_inference_rebuilds_it(tmp_path, demo_dir):
    """release_from_run over a run of recipe v4 (the decoder-reading head): the card says so, and inference.json
    builds the network the released weights load into, with no recipe given."""
    from generated import save_untrained_checkpoint

    from custom.deploy.release import release_from_run

    fold = tmp_path / "run" / "fold0"
    fold.mkdir(parents=True)
    save_untrained_checkpoint(fold / "model.pt", classifier_input="decoder")
    (fold / "metrics.json").write_text(json.dumps({"dice": 0.5}))
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "recipe_cpu_v4.json")]
    meta = {"data": str(demo_dir), "config_files": configs, "overrides": {"spatial_size": [32, 32]}, "folds": [0]}
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    card = release_from_run(tmp_path / "run", 0, tmp_path / "release")
    assert card["classifier_input"] == "decoder" and card["spatial_size"] == [32, 32]
    released = tmp_path / "release" / "model.pt"
    parser = bundle_parser(str(CONFIGS / "inference.json"), {"ckpt_path": str(released)})
    network = TrainedModel(released).load(parser.get_parsed_content("network_def"))
    assert network.pooled_levels is not None
