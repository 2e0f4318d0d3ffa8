"""Recipe v2 (recipe_cpu_v2.json): its sampler, loss, augmentation, weight average, pixel-centred masks and the
carried training state that continues one schedule across working blocks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIGS, TINY_RUN, run_bundle
from ignite.engine import Engine

from custom.configs import bundle_parser
from custom.data import lesion_share_sampler
from custom.engine import WeightAverage
from custom.errors import InputError
from custom.transforms import AntiAliasedResized, RandSpeckleNoised

RECIPE = [str(CONFIGS / "train.json"), str(CONFIGS / "recipe_cpu_v2.json")]


def test_lesion_share_sampler_draws_the_set_share_of_lesion_images():
    records = [{"lesion": int(i >= 40)} for i in range(100)]  # 40 normal, 60 lesion
    torch.manual_seed(0)
    sampler = lesion_share_sampler(records, lesion_share=0.7)
    assert len(sampler) == 100
    counts = Counter(records[i]["lesion"] for _ in range(50) for i in sampler)
    assert counts[1] / (counts[0] + counts[1]) == pytest.approx(0.7, abs=0.02)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(InputError, match="lesion_share"):
            lesion_share_sampler(records, bad)


def test_weight_average_follows_the_network_with_a_warm_up_and_is_the_network_when_off():
    net = torch.nn.Linear(2, 1, bias=False)
    average = WeightAverage(net, decay=0.9)
    engine = Engine(lambda e, b: None)
    average.attach(engine)
    history = []
    for value in (1.0, 2.0, 3.0):
        with torch.no_grad():
            net.weight.fill_(value)
        average._update(engine)
        history.append(float(average.module.weight[0, 0].detach()))
    # first update copies; then d_t = min(0.9, (1 + n) / (10 + n)) with n = 1, 2 updates so far
    d1, d2 = 2 / 11, 3 / 12
    expected_2 = d1 * 1.0 + (1 - d1) * 2.0
    assert history == pytest.approx([1.0, expected_2, d2 * expected_2 + (1 - d2) * 3.0])
    assert average.module is not net
    average.restart()  # a continued run: the next update copies the network, the warm-up starts again
    with torch.no_grad():
        net.weight.fill_(7.0)
    average._update(engine)
    assert float(average.module.weight[0, 0].detach()) == 7.0 and int(average.averaged.n_averaged) == 1
    off = WeightAverage(net, decay=None)
    assert off.module is net and off.state_dict() == {}
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(net, decay=1.0)


def test_speckle_noise_is_multiplicative_shared_by_the_channels_and_stays_in_range():
    image = torch.rand(1, 16, 16).repeat(3, 1, 1) * 0.8 + 0.1
    image[:, 0, 0] = 0.0
    noisy = RandSpeckleNoised("image", prob=1.0, std=(0.3, 0.3)).set_random_state(0)({"image": image})["image"]
    assert torch.equal(noisy[0], noisy[1]) and torch.equal(noisy[1], noisy[2])  # grey stays grey
    assert noisy[0, 0, 0] == 0.0  # no echo, no speckle
    assert not torch.equal(noisy, image) and noisy.min() >= image.min() and noisy.max() <= image.max()
    untouched = RandSpeckleNoised("image", prob=0.0)({"image": image})["image"]
    assert torch.equal(untouched, image)


@pytest.mark.parametrize("config", ["train.json", "inference.json"])
def test_resized_masks_stay_centred_on_the_resized_image(config):
    """A mask resized with the network input's transform keeps its centroid within half a network pixel of
    the same region in the resized image (floor-indexed ``nearest`` moved it by about +0.4 pixel)."""
    transforms = json.loads((CONFIGS / config).read_text())["input_transforms"]
    (resize,) = [t for t in transforms if t["_target_"].endswith("AntiAliasedResized")]
    transform = AntiAliasedResized(["image", "label"], [96, 96], mode=resize["mode"], anti_aliasing=[True, False])
    mask = np.zeros((1, 470, 500), np.float32)
    mask[:, 101:289, 157:411] = 1.0  # a rectangle off every block boundary
    out = transform({"image": torch.from_numpy(mask.copy()), "label": torch.from_numpy(mask.copy())})
    image, label = out["image"][0].numpy(), out["label"][0].numpy()
    assert set(np.unique(label)) == {0.0, 1.0}

    def centroid(weights: np.ndarray) -> np.ndarray:
        rows, cols = np.indices(weights.shape)
        return np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum()

    assert np.all(np.abs(centroid(label) - centroid(image.clip(0, 1))) < 0.5)


def test_recipe_v2_builds_its_loss_sampler_and_augmentation():
    parser = bundle_parser(RECIPE, {"device": "$torch.device('cpu')"})
    seg = parser.get_parsed_content("loss#task_losses#seg", instantiate=True)
    assert type(seg).__name__ == "DiceCELoss" and seg.dice.batch is False
    names = [type(t).__name__ for t in parser.get_parsed_content("augmentation")]
    assert "RandRotate90d" not in names and "RandSpeckleNoised" in names
    flips = [t for t in parser.get_parsed_content("augmentation") if type(t).__name__ == "RandFlipd"]
    assert [f.flipper.spatial_axis for f in flips] == [1]  # left-right only: the skin stays at the top
    assert parser.get_parsed_content("ema_decay") == 0.999


def _v2_args(demo_dir: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return [
        "training",
        "--config_file",
        json.dumps(RECIPE),
        "--dataset_dir",
        str(demo_dir),
        "--output_dir",
        str(out),
        "--epochs",
        str(epochs),
        "--val_interval",
        "1",
        *TINY_RUN,
        *extra,
    ]


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_carried_state_continues_the_learning_rate_curve_exactly(demo_dir, tmp_path):
    """Four epochs in one go, and the same schedule as two epochs, a carried state file, and two more
    epochs in a new run: the same learning rate at every epoch; the file holds float16 weights under the cap."""
    planned = ["--warmup_epochs", "1", "--lr_scheduler#t_total", "4"]
    run_bundle(*_v2_args(demo_dir, tmp_path / "straight", 4, *planned))
    state = tmp_path / "carried" / "state.pt"
    run_bundle(*_v2_args(demo_dir, tmp_path / "block1", 2, *planned, "--carry_state", str(state)))
    saved = torch.load(state, weights_only=True)
    assert saved["trainer"]["iteration"] == 2 * saved["trainer"]["epoch_length"] and state.stat().st_size < 25e6
    assert {t.dtype for t in saved["network"].values() if t.is_floating_point()} == {torch.float16}
    assert "averaged" not in saved and saved["best_model"]["_saved"]  # the best score travels, the average restarts
    best = torch.load(state.with_suffix(".best.pt"), weights_only=True)  # and the best weights, beside the state
    assert best["score"] == saved["best_model"]["_saved"][-1][0]
    run_bundle(*_v2_args(demo_dir, tmp_path / "block2", 4, *planned, "--carry_state", str(state)))
    straight, second = _log(tmp_path / "straight"), _log(tmp_path / "block2")
    assert [r["epoch"] for r in second] == [3, 4]
    assert [r["lr"] for r in _log(tmp_path / "block1")] + [r["lr"] for r in second] == [r["lr"] for r in straight]
    trainer = torch.load(state, weights_only=True)["trainer"]
    assert trainer["iteration"] == 4 * trainer["epoch_length"]
    # a new folder starts from the carried best weights: its model.pt is never worse than the best so far
    assert (tmp_path / "block2" / "model.pt").is_file()


def test_a_carried_state_of_another_network_is_refused_in_one_line(demo_dir, tmp_path):
    state = tmp_path / "state.pt"
    from custom.engine.carry import FORMAT

    torch.save({"format": FORMAT, "network": {"conv.weight": torch.zeros(1)}, "loss": {}}, state)
    proc = run_bundle(*_v2_args(demo_dir, tmp_path / "run", 1, "--carry_state", str(state)), check=False)
    assert proc.returncode != 0
    assert f"{state}: the carried weights do not fit this network" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_learning_rate_range_test_sweeps_the_recipes_rates_and_writes_the_curve(demo_dir, tmp_path):
    from custom.workflows.lr_range import lr_range_test

    overrides = {"dataset_dir": str(demo_dir), "spatial_size": [32, 32], "batch_size": 4, "num_workers": 0}
    result = lr_range_test(RECIPE, overrides, start_lr=1e-5, end_lr=1e-1, num_iter=12, out=str(tmp_path))
    lrs = result["lrs"]
    # the finder stops early only where the loss diverges; the last point of the sweep is not reported
    assert len(lrs) == len(result["losses"]) >= 10 and lrs[0] == pytest.approx(1e-5, rel=0.5)
    assert all(b > a for a, b in zip(lrs, lrs[1:])) and lrs[-1] <= 1e-1
    assert 1e-5 <= result["min_loss_lr"] <= 1e-1
    assert (tmp_path / "lr_range.png").stat().st_size > 0
    assert json.loads((tmp_path / "lr_range.json").read_text())["lrs"] == lrs
    with pytest.raises(InputError, match="start_lr"):
        lr_range_test(RECIPE, overrides, start_lr=1e-1, end_lr=1e-3)
