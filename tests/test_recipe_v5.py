"""Recipe v5 (recipe_cpu_v5.json): from an epoch on, the weight average is the equal (SWA) average of the iterations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, TINY_RUN, run_bundle
from ignite.engine import Engine

from custom.configs import bundle_parser
from custom.engine import WeightAverage

RECIPE = [str(CONFIGS / "train.json"), *(str(CONFIGS / f"recipe_cpu_v{v}.json") for v in (2, 4, 5))]


def _train(average: WeightAverage, weights: list[list[float]], engine: Engine | None = None) -> Engine:
    """Runs ``average`` over epochs whose iterations set the network's single weight to the values given."""
    values = iter(w for epoch in weights for w in epoch)

    def step(engine: Engine, batch: object) -> None:
        with torch.no_grad():
            average.network.weight.fill_(next(values))

    engine = engine or Engine(step)
    average.attach(engine)
    engine.run(range(len(weights[0])), max_epochs=len(weights))
    return engine


def test_the_average_turns_equal_at_its_epoch_and_holds_every_iteration_since_alike():
    net = torch.nn.Linear(1, 1, bias=False)
    average = WeightAverage(net, decay=0.5, equal_from_epoch=2)
    _train(average, [[10.0, 20.0], [1.0, 2.0], [3.0, 6.0]])
    # epoch 1's EMA is forgotten: the mean of the four iterations from epoch 2 on
    assert float(average.module.weight.detach()) == pytest.approx((1 + 2 + 3 + 6) / 4)
    assert int(average.averaged.n_averaged) == 4


def test_without_an_ema_the_average_is_the_network_until_the_equal_average_starts():
    net = torch.nn.Linear(1, 1, bias=False)
    average = WeightAverage(net, decay=None, equal_from_epoch=3)
    _train(average, [[5.0, 7.0], [8.0, 9.0]])
    assert average.module is not net and float(average.module.weight.detach()) == 9.0
    net2 = torch.nn.Linear(1, 1, bias=False)
    later = WeightAverage(net2, decay=None, equal_from_epoch=2)
    _train(later, [[5.0, 7.0], [8.0, 9.0], [1.0, 0.0]])
    assert float(later.module.weight.detach()) == pytest.approx((8 + 9 + 1 + 0) / 4)


def test_a_resumed_run_goes_on_with_the_saved_equal_average():
    net = torch.nn.Linear(1, 1, bias=False)
    first = WeightAverage(net, decay=0.9, equal_from_epoch=1)
    _train(first, [[2.0, 4.0]])
    saved = first.state_dict()
    # a new process: a fresh average loads the saved one and the trainer resumes at epoch 2
    resumed = WeightAverage(net, decay=0.9, equal_from_epoch=1)
    resumed.load_state_dict(saved)
    values = iter([6.0, 8.0])

    def step(engine: Engine, batch: object) -> None:
        with torch.no_grad():
            net.weight.fill_(next(values))

    engine = Engine(step)
    resumed.attach(engine)
    engine.load_state_dict({"epoch": 1, "epoch_length": 2, "max_epochs": 2})
    engine.run(range(2), max_epochs=2)
    assert float(resumed.module.weight.detach()) == pytest.approx((2 + 4 + 6 + 8) / 4)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "30", True])
def test_a_start_epoch_that_is_not_an_epoch_is_one_line_naming_the_option(bad):
    with pytest.raises(ValueError, match="swa_start_epoch"):
        WeightAverage(torch.nn.Linear(1, 1), decay=None, equal_from_epoch=bad)


def test_recipe_v5_is_recipe_v4_with_the_equal_average_from_epoch_30():
    parser = bundle_parser(RECIPE, {"device": "$torch.device('cpu')"})
    assert parser.get_parsed_content("epochs") == 70 and parser.get_parsed_content("classifier_input") == "decoder"
    average = parser.get_parsed_content("averaged_network")
    assert average.decay == 0.999 and average.equal_from_epoch == 30


@pytest.mark.slow
def test_a_recipe_v5_run_checkpoints_the_equal_average(demo_dir, tmp_path: Path):
    out = tmp_path / "run"
    args = ["--dataset_dir", str(demo_dir), "--output_dir", str(out), "--epochs", "2", "--swa_start_epoch", "2"]
    run_bundle("training", "--config_file", json.dumps(RECIPE), "--val_interval", "1", *TINY_RUN, *args)
    last = torch.load(out / "checkpoint_epoch=2.pt", weights_only=True)
    # the average holds epoch 2's iterations alike, epoch 1's EMA forgotten
    assert int(last["averaged_network"]["n_averaged"]) == last["trainer"]["epoch_length"] > 1
    averaged = {k.removeprefix("module."): v for k, v in last["averaged_network"].items() if k != "n_averaged"}
    assert any(
        not torch.equal(averaged[k], last["network"][k]) for k in last["network"]
    )  # not the network's last weights


@pytest.mark.slow
def test_a_carried_run_goes_on_with_its_equal_average(demo_dir, tmp_path: Path):
    """Two epochs, the carried state, a third epoch in a new run: the average holds the iterations of epochs 2 and 3,
    not only those of epoch 3."""
    state = tmp_path / "carried" / "state.pt"

    def block(out: str, epochs: int) -> None:
        args = ["--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path / out), "--epochs", str(epochs)]
        planned = ["--swa_start_epoch", "2", "--lr_scheduler#t_total", "3", "--carry_state", str(state)]
        run_bundle("training", "--config_file", json.dumps(RECIPE), "--val_interval", "1", *TINY_RUN, *args, *planned)

    block("block1", 2)
    average = torch.load(state.with_suffix(".average.pt"), weights_only=True)
    length = torch.load(state, weights_only=True)["trainer"]["epoch_length"]
    assert average["n_averaged"] == length and average["iteration"] == 2 * length
    assert {t.dtype for t in average["weights"].values() if t.is_floating_point()} == {torch.float16}
    block("block2", 3)
    last = torch.load(tmp_path / "block2" / "checkpoint_epoch=3.pt", weights_only=True)
    assert int(last["averaged_network"]["n_averaged"]) == 2 * length
