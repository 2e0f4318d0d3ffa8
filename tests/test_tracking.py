"""Experiment tracking: validation overlays in TensorBoard, and MLflow through ``monai.bundle run --tracking mlflow``."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import CONFIGS, run_bundle
from ignite.engine import Engine
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from custom.engine.overlays import ValidationOverlays, overlay_panel


def _masks(size: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A mid-grey image (its extremes, which intensity rescaling maps to 0 and 1, outside both masks) and two masks."""
    image = torch.full((3, size, size), 0.5)
    image[:, 0, -1], image[:, -1, 0] = 0.0, 1.0
    label = torch.zeros(1, size, size)
    label[:, 1:3, 1:3] = 1
    pred = torch.zeros(1, size, size)
    pred[:, 5:7, 5:7] = 1
    return image, label, pred


def test_overlay_panel_shows_image_truth_in_green_and_prediction_in_red():
    image, label, pred = _masks()
    panel = overlay_panel(image, label, pred)
    assert panel.shape == (3, 8, 24) and 0.0 <= panel.min() and panel.max() <= 1.0
    plain, truth, predicted = panel[..., :8], panel[..., 8:16], panel[..., 16:]
    background = (label[0] == 0) & (pred[0] == 0)
    assert torch.equal(truth[:, background], plain[:, background])
    assert torch.equal(predicted[:, background], plain[:, background])
    in_truth, in_pred = label[0] == 1, pred[0] == 1
    assert (truth[1, in_truth] > plain[1, in_truth]).all() and (truth[0, in_truth] < plain[0, in_truth]).all()
    assert (predicted[0, in_pred] > plain[0, in_pred]).all() and (predicted[1, in_pred] < plain[1, in_pred]).all()


def test_overlay_panel_of_a_volume_is_its_middle_slice():
    image, label, pred = (x[..., None].repeat(1, 1, 1, 5) for x in _masks())
    volume = overlay_panel(image, label, pred)
    assert torch.equal(volume, overlay_panel(image[..., 2], label[..., 2], pred[..., 2]))


def test_validation_overlays_writes_the_first_images_of_every_validation(tmp_path):
    """Fake evaluator: 3 iterations of 2 decollated outputs (the last without a mask, as a classification-only network)."""
    image, label, pred = _masks()
    with_mask = {"image": image, "seg_label": label, "seg_pred": pred}
    batches = [[with_mask, with_mask], [with_mask, {"image": image}], [with_mask, with_mask]]
    evaluator = Engine(lambda engine, batch: batch)
    writer = SummaryWriter(log_dir=str(tmp_path))
    ValidationOverlays(summary_writer=writer, max_images=4, tag="overlay").attach(evaluator)
    evaluator.run(batches, max_epochs=2)
    writer.close()

    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0}).Reload()
    assert sorted(events.Tags()["images"]) == ["overlay/0", "overlay/1", "overlay/2", "overlay/3"]
    for tag in events.Tags()["images"]:
        assert [(e.step, e.width, e.height) for e in events.Images(tag)] == [(1, 24, 8), (2, 24, 8)]


@pytest.fixture(scope="module")
def tracked_run(demo_dir, tmp_path_factory):
    """Two epochs with ``--tracking mlflow`` into a local SQLite store; TensorBoard logs as by default."""
    out = tmp_path_factory.mktemp("tracked")
    store = f"sqlite:///{out / 'mlflow.db'}"
    run_bundle(
        "training",
        "--config_file",
        str(CONFIGS / "train.json"),
        "--tracking",
        "mlflow",
        "--tracking_uri",
        store,
        "--experiment_name",
        "nunet_test",
        "--dataset_dir",
        str(demo_dir),
        "--output_dir",
        str(out),
        "--epochs",
        "2",
        "--spatial_size",
        "[64,64]",
        "--batch_size",
        "2",
        "--num_workers",
        "0",
    )
    return out, store


@pytest.mark.slow
def test_mlflow_store_holds_the_run_with_its_params_and_metrics(tracked_run, demo_dir):
    from mlflow import MlflowClient

    out, store = tracked_run
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("nunet_test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    n_train = len(json.loads((demo_dir / "fold0.json").read_text())["training"])
    assert run.data.params == {"max_epochs": "2", "epoch_length": str(math.ceil(n_train / 2))}

    def history(key: str) -> list:
        return client.get_metric_history(run.info.run_id, key)

    assert len(history("train_loss")) == 2 * math.ceil(n_train / 2)  # one value per iteration
    validation = ("val_dice_all", "val_dice", "val_iou", "val_accuracy", "val_auc", "val_loss")
    for key in (*validation, "amtl_weight_seg", "amtl_weight_cls"):
        values = history(key)
        assert sorted(m.step for m in values) == [1, 2], key  # one value per validation epoch
        assert all(math.isfinite(m.value) for m in values), key


@pytest.mark.slow
def test_tensorboard_holds_amtl_weights_and_validation_overlays(tracked_run):
    out, _ = tracked_run
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    for task in ("seg", "cls"):
        weights = events.Scalars(f"amtl_weight_{task}")
        assert [e.step for e in weights] == [1, 2]
        assert all(0.0 < e.value < 1.0 for e in weights)  # 1 / (2 sigma^2) near its initial 0.5
    overlays = [tag for tag in events.Tags()["images"] if tag.startswith("val_overlay/")]
    assert len(overlays) == 4
    assert all([e.step for e in events.Images(tag)] == [1, 2] for tag in overlays)
