"""The CPU training path: mixed precision on the trainer's own device, class-balanced batches, progress, learning."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import CONFIGS
from ignite.engine import Engine
from sklearn.metrics import roc_auc_score

from custom.configs import bundle_parser
from custom.data import balanced_sampler
from custom.engine import AutocastInferer, IterationProgress, amp_supported

RECIPE = [str(CONFIGS / "train.json"), str(CONFIGS / "recipe_cpu_budget.json")]


def test_autocast_inferer_runs_the_forward_in_bf16_on_the_cpu_and_returns_float32():
    seen = []
    net = torch.nn.Conv2d(1, 1, 3)
    net.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = torch.rand(2, 1, 8, 8)
    out = AutocastInferer(enabled=True, dtype="bfloat16")(x, lambda t: {"seg": net(t), "n": torch.tensor([3])})
    assert seen == [torch.bfloat16] and out["seg"].dtype == torch.float32 and out["n"].dtype == torch.int64
    assert torch.allclose(out["seg"], net(x), atol=0.05)
    assert AutocastInferer(enabled=False)(x, net).dtype == torch.float32 and seen[-1] == torch.float32


def test_train_config_enables_amp_only_where_the_device_has_fast_reduced_precision():
    parser = bundle_parser(RECIPE[:1], {"device": "$torch.device('cpu')"})
    assert parser.get_parsed_content("amp") == amp_supported("cpu")
    assert parser.get_parsed_content("amp_dtype") == "bfloat16"
    assert parser.get_parsed_content("train#trainer#amp") is False  # MONAI's CUDA-only scaler stays off on the CPU
    inferer = parser.get_parsed_content("train#inferer")
    assert isinstance(inferer, AutocastInferer) and parser.get_parsed_content("validate#inferer") is inferer


def test_balanced_sampler_draws_every_class_equally_often():
    records = [{"lesion": int(i >= 10)} for i in range(100)]  # 10 normal, 90 lesion
    torch.manual_seed(0)
    sampler = balanced_sampler(records)
    assert len(sampler) == 100
    counts = Counter(records[i]["lesion"] for _ in range(50) for i in sampler)
    assert abs(counts[0] / (counts[0] + counts[1]) - 0.5) < 0.03
    with pytest.raises(ValueError, match="outside"):
        balanced_sampler([{"lesion": 2}])
    assert len(balanced_sampler([{"image": "a.png"}, {"image": "b.png"}])) == 2  # no class field: uniform


def test_progress_bar_shows_images_per_second_only_when_asked_or_on_a_terminal(capsys):
    engine = Engine(lambda e, b: {"loss": 0.5})
    IterationProgress(batch_size=4).attach(engine)  # pytest's stderr is no terminal: nothing attached
    engine.run([0] * 3, max_epochs=1)
    assert "img/s" not in capsys.readouterr().err
    engine = Engine(lambda e, b: {"loss": 0.5})
    IterationProgress(batch_size=4, force=True).attach(engine)
    engine.run([0] * 3, max_epochs=1)
    assert "img/s" in capsys.readouterr().err


def test_without_a_terminal_progress_is_a_log_line_every_n_iterations(caplog):
    """Evaluation and inference in a log file (nohup, CI): a line every ``log_every`` iterations, no bar."""
    engine = Engine(lambda e, b: {})
    IterationProgress(batch_size=1, log_every=2).attach(engine)
    with caplog.at_level(logging.INFO, logger="nunet"):
        engine.run([0] * 5, max_epochs=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "nunet"]
    assert [line.split(",")[0] for line in lines] == ["2/5 iterations", "4/5 iterations"]
    assert all(line.endswith("images/s") for line in lines)


def _separable_records(n: int = 40, normals: int = 8, size: int = 32, seed: int = 0) -> list[dict]:
    """Speckle-like noise; lesion images carry one dark disc. One normal for four lesions, as in BUSI."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    records = []
    for i in range(n):
        image, mask = rng.uniform(60, 180, (size, size)), np.zeros((size, size))
        if i >= normals:
            r = rng.uniform(4, 8)
            cy, cx = rng.uniform(r, size - r, 2)
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(float)
            image *= 1 - 0.7 * mask
        pixels, label = image[None].astype(np.uint8), (255 * mask[None]).astype(np.uint8)
        records.append({"id": f"case{i}", "image": pixels, "label": label, "lesion": int(i >= normals)})
    return records


@pytest.mark.slow
def test_budget_recipe_classifier_learns_a_separable_training_set(tmp_path):
    """The check that the classification branch learns at all (a detached or constant head fails it).

    A CPU probe on BUSI found the lesion probability stuck at the class prior (0.46-0.51 on every
    image after 16 epochs). Through the bundle's own pipeline (transforms, balanced sampler,
    AMTL loss, trainer) on 40 separable images with BUSI's 1:4 class ratio, the AUC of the lesion
    probability on the training images, network in eval mode, must pass 0.9 within 8 epochs.
    """
    records = _separable_records()
    overrides = {
        "device": "$torch.device('cpu')",
        "output_dir": str(tmp_path),  # its validation handlers open a TensorBoard log there
        "spatial_size": [32, 32],
        "epochs": 8,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "warmup_epochs": 0,
        "num_workers": 0,
        "train#handlers": [],
        "train#load_transforms": [{"_target_": "EnsureTyped", "keys": ["image", "label"], "track_meta": True}],
        "train#dataset#data": records,
        "validate#dataset#data": records,
    }
    parser = bundle_parser(RECIPE, overrides)
    parser.get_parsed_content("initialize")
    parser.get_parsed_content("train#trainer").run()
    network = parser.get_parsed_content("network").eval()
    dataset = parser.get_parsed_content("validate#dataset")  # the training images, without augmentation
    images = torch.stack([torch.as_tensor(dataset[i]["image"]) for i in range(len(records))])
    with torch.no_grad():
        lesion_prob = torch.softmax(network(images)["cls"], dim=1)[:, 1]
    assert roc_auc_score([r["lesion"] for r in records], lesion_prob.numpy()) > 0.9


def test_compile_switch_trains_on_batches_of_loaded_images(demo_dir, tmp_path):
    """``--compile True`` crashed on the first batch of real images: MONAI's compiled trainer rebuilds the
    input MetaTensor from the batched metadata, and a batched numeric ``original_channel_dim`` (every
    grayscale PNG) fails MONAI's channel check. The trainer gets plain tensors; the compiler backend
    here is TorchDynamo's ``eager`` (the same graph capture, no C++ build)."""
    overrides = {
        "device": "$torch.device('cpu')",
        "dataset_dir": str(demo_dir),
        "output_dir": str(tmp_path),
        "spatial_size": [32, 32],
        "batch_size": 2,
        "num_workers": 0,
        "compile": True,
        "train#trainer#compile_kwargs": {"backend": "eager"},
        "train#trainer#epoch_length": 2,
        "train#trainer#max_epochs": 1,
        "train#handlers": [],
    }
    parser = bundle_parser(RECIPE[:1], overrides)
    trainer = parser.get_parsed_content("train#trainer")
    trainer.run()
    assert trainer.state.iteration == 2 and torch.isfinite(torch.as_tensor(trainer.state.output[0]["loss"]))


def test_a_single_pass_logs_its_metrics_under_its_title_without_training_words(caplog):
    """Evaluation printed ``Epoch[1] Metrics --``, ``Epoch[1] Complete`` and ``Got new best metric``."""
    from ignite.engine import Events

    from custom.engine import QuietStatsHandler

    engine = Engine(lambda e, b: {})
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_dice=0.5, note="x"))
    QuietStatsHandler(iteration_log=False, title="evaluation on the test split").attach(engine)
    with caplog.at_level(logging.INFO):
        engine.run([0] * 2, max_epochs=1)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "evaluation on the test split: val_dice 0.5000" in text
    assert "Epoch[" not in text and "best metric" not in text
