"""The trained model on disk (custom/checkpoints): resolved once per run from --ckpt_path, loaded one file per network,
and a folder evaluated as the ensemble that inference makes of it."""

from __future__ import annotations

import csv

import pytest
import torch
from conftest import CONFIGS, run_bundle
from generated import save_untrained_checkpoint

from custom.checkpoints import TrainedModel, write_card
from custom.configs import bundle_parser
from custom.errors import InputError
from custom.networks import ProbabilityEnsemble, ensemble

EVALUATE = f"['{CONFIGS / 'train.json'}','{CONFIGS / 'evaluate.json'}']"


def _folder_of_two(folder, thresholds=(0.3, 0.5)):
    """Two untrained checkpoints of inference.json's network (other initial weights), carded at 32x32."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed, (name, threshold) in enumerate(zip(("a.pt", "b.pt"), thresholds)):
        paths.append(save_untrained_checkpoint(folder / name, seed))
        write_card(paths[-1], {"spatial_size": [32, 32], "lesion_threshold": threshold})
    return paths


def test_several_weight_files_load_into_one_network_each_and_never_into_one_plain_network(tmp_path):
    paths = _folder_of_two(tmp_path / "models")
    trained = TrainedModel(tmp_path / "models")
    assert trained.paths == paths and trained.spatial_size == [32, 32] and trained.lesion_threshold == 0.4
    network = bundle_parser(str(CONFIGS / "inference.json"), {"ckpt_path": str(tmp_path / "models")})
    network = network.get_parsed_content("network_def")
    with pytest.raises(
        InputError, match=r"--ckpt_path names 2 checkpoints \(an ensemble: .*a\.pt, .*b\.pt\), where one"
    ):
        trained.load(network)
    members = trained.members(network)
    assert members[0] is network and members[1] is not network
    for member, path in zip(members, paths):
        expected = torch.load(path, weights_only=True)["model"]
        assert all(torch.equal(member.state_dict()[k], v) for k, v in expected.items())
    assert isinstance(ensemble(members), ProbabilityEnsemble) and ensemble(members[:1]) is network


def test_the_configs_resolve_the_trained_model_once(tmp_path, monkeypatch):
    """inference.json read --ckpt_path in 4 components and evaluate.json in 3: now one trained_model each."""
    import custom.checkpoints.trained as trained

    _folder_of_two(tmp_path / "models")
    made = []
    monkeypatch.setattr(trained, "file_sha256", lambda p, f=trained.file_sha256: made.append(p) or f(p))
    overrides = {"ckpt_path": str(tmp_path / "models"), "cpu_runtime": "torch", "device": "$torch.device('cpu')"}
    configs = {
        "inference": [str(CONFIGS / "inference.json")],
        "evaluate": [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")],
    }
    for name, files in configs.items():
        made.clear()
        parser = bundle_parser(files, overrides)
        keys = ("spatial_size", "lesion_threshold", "temperature", "network")
        spatial_size, threshold, temperature, network = (parser.get_parsed_content(k) for k in keys)
        assert (spatial_size, threshold, temperature) == ([32, 32], pytest.approx(0.4), 1.0), name
        assert isinstance(network, ProbabilityEnsemble) and len(made) == 2, name  # one hash per file, once


def _lesion_probabilities(folder) -> dict[str, float]:
    with open(folder / "per_image.csv", newline="") as f:
        return {row["id"]: float(row["lesion_prob"]) for row in csv.DictReader(f)}


def test_evaluating_a_folder_scores_the_ensemble_of_its_checkpoints_as_inference_does(demo_dir, tmp_path):
    """A folder as --ckpt_path: evaluate.json loaded its first checkpoint alone and decided with the mean of all the
    checkpoints' thresholds; inference ensembles them. Now evaluation scores the ensemble too."""
    a, b = _folder_of_two(tmp_path / "models")
    common = ("--dataset_dir", str(demo_dir), "--num_workers", "0")
    for ckpt, out in ((tmp_path / "models", "ensemble"), (a, "a"), (b, "b")):
        run_bundle("evaluating", "--config_file", EVALUATE, *common, "--ckpt_path", str(ckpt),
                   "--output_dir", str(tmp_path / out))  # fmt: skip
    ensemble, first, second = (_lesion_probabilities(tmp_path / out) for out in ("ensemble", "a", "b"))
    assert set(ensemble) == set(first) and ensemble != first
    for case, probability in ensemble.items():  # temperature 1: the mean of the members' class probabilities
        assert probability == pytest.approx((first[case] + second[case]) / 2, abs=1e-5)
