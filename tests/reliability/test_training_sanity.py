"""A diverged training stops in one line (custom/engine/sanity.py); no tool uses NaN weights (custom/checkpoints)."""

from __future__ import annotations

import pytest
import torch
from conftest import CONFIGS, TINY_RUN, run_bundle
from generated import save_untrained_checkpoint
from ignite.engine import Engine, Events
from PIL import Image

from custom.checkpoints import load_model_weights
from custom.engine import NonFiniteGuard, TrainingDiverged
from custom.errors import InputError, one_line


def _engine(losses: list[float], network: torch.nn.Module) -> tuple[Engine, list[int]]:
    """A trainer whose iterations return ``losses`` in turn, the guard, then a stand-in validator."""
    engine = Engine(lambda e, batch: [{"loss": torch.tensor(losses[e.state.iteration - 1])}])
    NonFiniteGuard(network).attach(engine)
    validated: list[int] = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: validated.append(e.state.epoch))
    return engine, validated


def test_a_non_finite_loss_names_the_epoch_and_iteration():
    engine, validated = _engine([0.5, 0.4, 0.3, float("nan"), 0.2, 0.1], torch.nn.Linear(2, 2))
    with pytest.raises(TrainingDiverged) as error:
        engine.run([0, 1, 2], max_epochs=2)
    assert one_line(error.value).startswith("training stopped: the loss became nan at epoch 2, iteration 1 of 3;")
    assert validated == [1]  # epoch 2 never reached validation


def test_non_finite_weights_are_neither_validated_nor_saved():
    network = torch.nn.Linear(2, 2)
    engine, validated = _engine([0.1, 0.1, 0.1], network)
    # the optimiser's last step of the epoch wrote NaN weights, after the last finite loss
    engine.add_event_handler(Events.ITERATION_COMPLETED(once=3), lambda e: network.weight.data.fill_(float("nan")))
    with pytest.raises(TrainingDiverged, match=r"1 weight tensors became NaN or infinite in epoch 1 \(first: weight\)"):
        engine.run([0, 1, 2], max_epochs=1)
    assert validated == []


def test_inference_evaluation_and_export_refuse_nan_weights(tmp_path):
    path = save_untrained_checkpoint(tmp_path / "model.pt")
    state = torch.load(path, weights_only=True)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name][...] = float("nan")
    torch.save(state, path)
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    with pytest.raises(InputError, match=rf"model\.pt: 1 weight tensors hold NaN or infinite values \(first: {name}\)"):
        load_model_weights(parser.get_parsed_content("network_def"), path)
    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (40, 30), 90).save(images / "case.png")
    proc = run_bundle(
        "--config_file",
        str(CONFIGS / "inference.json"),
        "--input_dir",
        str(images),
        "--output_dir",
        str(tmp_path / "out"),
        "--ckpt_path",
        str(path),
        "--spatial_size",
        "[32,32]",
        check=False,
    )
    assert proc.returncode != 0 and not (tmp_path / "out" / "case.json").exists()
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {path}: 1 weight tensors hold NaN")


@pytest.mark.slow
def test_a_diverging_training_stops_in_one_line_without_a_checkpoint(demo_dir, tmp_path):
    proc = run_bundle(
        "training",
        "--config_file",
        str(CONFIGS / "train.json"),
        "--dataset_dir",
        str(demo_dir),
        "--output_dir",
        str(tmp_path),
        *TINY_RUN,
        "--epochs",
        "2",
        "--learning_rate",
        "1e10",
        check=False,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: training stopped: the loss became nan at epoch 1, iteration ") and "(cases " in last
    assert not list(tmp_path.glob("*.pt"))
