"""The bundle end to end, through ``python -m monai.bundle run`` as users run it (tiny images, 2 epochs)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS, TINY_RUN, run_bundle
from monai.bundle import ConfigWorkflow
from PIL import Image

from custom.evaluation.measurements import measure_lesion

TINY = ["--spatial_size", "[64,64]", "--batch_size", "4", "--num_workers", "0"]


@pytest.mark.parametrize(("config", "workflow_type"), [("train.json", "train"), ("inference.json", "infer")])
def test_configs_have_every_property_monai_tools_need(config, workflow_type, demo_dir, tmp_path):
    workflow = ConfigWorkflow(
        config_file=str(CONFIGS / config),
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        workflow_type=workflow_type,
        dataset_dir=str(demo_dir),
        output_dir=str(tmp_path),
    )
    workflow.initialize()
    assert workflow.check_properties() == []


def test_the_best_model_saver_is_one_named_item_for_validation_and_the_training_handlers(demo_dir, tmp_path):
    """Validation runs the saver of ``model.pt``; the training handlers that keep its best score across a resume
    and a working block name it (``@best_model_saver``) instead of its place in the validation handlers."""
    from custom.configs import bundle_parser
    from custom.engine import CarriedState, ResumableCheckpoint

    overrides = {"dataset_dir": str(demo_dir), "output_dir": str(tmp_path), "cache_rate": 0.0, "num_workers": 0}
    parser = bundle_parser([str(CONFIGS / "train.json")], overrides)
    saver = parser.get_parsed_content("best_model_saver")
    assert any(h is saver for h in parser.get_parsed_content("validate#handlers"))
    handlers = parser.get_parsed_content("train#handlers")
    carried = [h.best_model for h in handlers if isinstance(h, CarriedState)]
    resumed = [h.objects["best_model"] for h in handlers if isinstance(h, ResumableCheckpoint)]
    assert len(carried) == len(resumed) == 1 and carried[0] is saver and resumed[0] is saver


def test_training_and_inference_define_the_network_and_its_input_alike():
    """One definition in two files: a peer config loaded over either replaces both alike (its inference follows)."""
    train, infer = (json.loads((CONFIGS / name).read_text()) for name in ("train.json", "inference.json"))
    for key in ("network_def", "input_transforms", "in_channels", "num_classes", "csb_mode", "refine"):
        assert train[key] == infer[key], key


@pytest.fixture(scope="module")
def training(demo_dir, tmp_path_factory):
    """A short training's run folder and its process (its console output)."""
    out = tmp_path_factory.mktemp("run")
    proc = run_bundle(
        "training",
        "--config_file",
        str(CONFIGS / "train.json"),
        "--epochs",
        "2",
        "--dataset_dir",
        str(demo_dir),
        "--output_dir",
        str(out),
        *TINY,
        in_process=False,  # the README's command as users type it, in its own interpreter
    )
    return out, proc


@pytest.fixture(scope="module")
def trained_run(training):
    return training[0]


@pytest.mark.slow
def test_training_writes_checkpoints_and_a_log(trained_run):
    assert (trained_run / "model.pt").is_file()
    assert list(trained_run.glob("checkpoint_*.pt"))
    log = [json.loads(line) for line in (trained_run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    for record in log:
        assert np.isfinite(record["train_loss"])
        expected = {"val_dice_all", "val_dice", "val_iou", "val_accuracy", "val_auc", "val_loss", "weight_cls", "s_seg"}
        assert expected <= set(record)
    assert list((trained_run / "tensorboard").glob("events.out.tfevents.*"))


def evaluate_demo(demo_dir: Path, output_dir: Path, *extra: str):
    """``evaluate.json`` over ``train.json`` on the demo data's test split at the tiny size, into ``output_dir``."""
    return run_bundle(
        "evaluating",
        "--config_file",
        f"['{CONFIGS / 'train.json'}','{CONFIGS / 'evaluate.json'}']",
        "--dataset_dir",
        str(demo_dir),
        "--output_dir",
        str(output_dir),
        *TINY,
        *extra,
    )


@pytest.mark.slow
def test_evaluation_writes_metrics_and_per_image_rows(trained_run, demo_dir):
    evaluate_demo(demo_dir, trained_run)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert set(metrics["classification"]) == {"accuracy", "precision", "recall", "f1", "auc", "ece", "brier"}
    assert set(metrics["segmentation"]) == {"dice", "iou", "pixel_accuracy", "sensitivity", "precision", "hd95", "asd"}
    test_split = json.loads((demo_dir / "fold0.json").read_text())["test"]
    assert metrics["n_images"] == len(test_split)
    with open(trained_run / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in test_split)
    accuracy = np.mean([int(r["lesion"]) == int(r["lesion_pred"]) for r in rows])
    assert metrics["classification"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)


RUN_LINE = re.compile(r" - nunet - INFO - ((?:training|evaluating|inferring) .*)$", re.MULTILINE)


@pytest.mark.slow
def test_every_run_opens_with_one_line_saying_what_it_does(training, demo_dir, tmp_path):
    """Training, evaluation and inference each log one line naming what they do: the data, the weights, the
    input size and where the outputs go; evaluation and inference without the training's words."""
    run, trained = training
    datalist = demo_dir / "fold0.json"
    splits = json.loads(datalist.read_text())
    evaluated = evaluate_demo(demo_dir, tmp_path / "eval", "--ckpt_path", str(run / "model.pt"))
    images = tmp_path / "images"
    images.mkdir()
    for record in splits["test"][:2]:
        shutil.copy(demo_dir / record["image"], images)
    inferred = run_bundle(
        "run",
        "--config_file",
        str(CONFIGS / "inference.json"),
        "--input_dir",
        str(images),
        "--output_dir",
        str(tmp_path / "pred"),
        "--ckpt_path",
        str(run / "model.pt"),
        "--spatial_size",
        "[64,64]",
    )
    expected = {
        "training": f"training NUNet on {datalist} ({len(splits['training'])} images): 2 epochs at 64x64, output in {run}",
        "evaluation": (
            f"evaluating {run / 'model.pt'} on the test split of {datalist} ({len(splits['test'])} images) at 64x64, "
            f"output in {tmp_path / 'eval'}"
        ),
        "inference": f"inferring 2 images from {images} with {run / 'model.pt'} at 64x64, output in {tmp_path / 'pred'}",
    }
    for (what, line), proc in zip(expected.items(), (trained, evaluated, inferred)):
        assert RUN_LINE.findall(proc.stdout) == [line], (what, proc.stdout[-3000:])
    for proc in (evaluated, inferred):
        assert "Epoch[" not in proc.stdout and "best metric" not in proc.stdout
    assert "evaluation on the test split: " in evaluated.stdout
    validated = evaluate_demo(
        demo_dir, tmp_path / "val", "--ckpt_path", str(run / "model.pt"), "--val_split", "validation"
    )
    assert f"on the validation split of {datalist} ({len(splits['validation'])} images)" in validated.stdout
    assert "evaluation on the validation split: " in validated.stdout and "test split" not in validated.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("task", "heads"), [("seg", {"segmentation"}), ("cls", {"classification"})])
def test_single_task_variants_train_evaluate_and_infer(task, heads, demo_dir, tmp_path):
    """N-Unet without its classification head or without its decoder (Table 8): every stage, only its metrics."""
    from monai.bundle import run

    out = tmp_path / task
    common = {
        "dataset_dir": str(demo_dir),
        "output_dir": str(out),
        "spatial_size": [32, 32],
        "num_workers": 0,
        "network_def#task": task,
        "logging_file": False,
    }
    run("training", config_file=str(CONFIGS / "train.json"), epochs=1, batch_size=4, **common)
    validated = json.loads((out / "train_log.jsonl").read_text().splitlines()[-1])
    assert ("val_dice_all" in validated) == (task == "seg") and ("val_auc" in validated) == (task == "cls")
    run("evaluating", config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")], **common)
    metrics = json.loads((out / "metrics.json").read_text())
    assert heads <= set(metrics) and not {"segmentation", "classification"} - heads & set(metrics)
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((40, 50), 90, np.uint8)).save(images / "case.png")
    run(
        "run",
        config_file=str(CONFIGS / "inference.json"),
        input_dir=str(images),
        output_dir=str(out / "pred"),
        ckpt_path=str(out / "model.pt"),
        spatial_size=[32, 32],
        **{"network_def#task": task},
        logging_file=False,
    )
    result = json.loads((out / "pred" / "case.json").read_text())
    assert ("class_probabilities" in result) == (task == "cls")
    assert (out / "pred" / "case_seg.png").exists() == (task == "seg")


@pytest.mark.slow
def test_inference_writes_masks_at_original_size_and_json(trained_run, demo_dir, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    sizes = {}
    for i, (w, h, mode) in enumerate([(90, 70, "L"), (120, 100, "RGB"), (80, 80, "RGBA")]):
        arr = np.random.default_rng(i).integers(0, 255, (h, w, len(mode)), dtype=np.uint8).squeeze()
        Image.fromarray(arr, mode).save(images / f"case {i}.png")
        sizes[f"case {i}"] = (w, h)
    outputs = {}
    for runtime in ("onnxruntime", "torch"):  # the CPU default, and eager PyTorch as the reference
        outputs[runtime] = out = tmp_path / f"pred_{runtime}"
        run_bundle(
            "run",
            "--config_file",
            str(CONFIGS / "inference.json"),
            "--input_dir",
            str(images),
            "--output_dir",
            str(out),
            "--ckpt_path",
            str(trained_run / "model.pt"),
            "--spatial_size",
            "[64,64]",
            "--cpu_runtime",
            runtime,
            "--pixel_spacing",
            "[0.1,0.2]",
        )
    out = outputs["onnxruntime"]
    for stem, size in sizes.items():
        fast, eager = (json.loads((o / f"{stem}.json").read_text()) for o in outputs.values())
        for name, p in eager["class_probabilities"].items():
            assert fast["class_probabilities"][name] == pytest.approx(p, abs=1e-4)
        assert np.array_equal(*(np.asarray(Image.open(o / f"{stem}_seg.png")) for o in outputs.values()))
        mask = Image.open(out / f"{stem}_seg.png")
        assert mask.size == size
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}
        result = json.loads((out / f"{stem}.json").read_text())
        assert set(result["class_probabilities"]) == {"normal", "lesion"}
        assert sum(result["class_probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert result["predicted_class"] in ("normal", "lesion")
        assert result["csb"]["mode"] == "hard"
        assert (result["csb"]["scale"] == 0.0) == (result["predicted_class"] == "normal")
        # the measurements are those of the written mask, at the image's size, in pixels and millimetres
        measured = result["lesion_measurements"]
        expected = measure_lesion(np.asarray(mask) > 0, [0.1, 0.2])
        assert measured.keys() == expected.keys()
        assert all(measured[k] == pytest.approx(v) for k, v in expected.items())
        if measured["components"]:
            assert measured["area_mm2"] == pytest.approx(measured["area_px"] * 0.02)


def test_datalist_override_feeds_training_validation_and_class_weights(demo_dir):
    """``--datalist <dir>/fold2.json``: training/validation splits of that file, class weight from its training split."""
    from monai.bundle import ConfigParser

    datalist = demo_dir / "fold2.json"
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({"datalist": str(datalist)})
    fold = json.loads(datalist.read_text())
    train = parser.get_parsed_content("train#dataset#data")
    assert sorted(r["id"] for r in train) == sorted(r["id"] for r in fold["training"])
    assert sorted(r["id"] for r in parser.get_parsed_content("validate#dataset#data")) == sorted(
        r["id"] for r in fold["validation"]
    )
    n_normal = sum(r["lesion"] == 0 for r in fold["training"])
    n_lesion = sum(r["lesion"] == 1 for r in fold["training"])
    assert parser.get_parsed_content("class_weights") == pytest.approx([1.0, n_normal / n_lesion])
    focal = parser.get_parsed_content("loss").task_losses["cls"].focal
    assert focal.class_weight.tolist() == pytest.approx([1.0, n_normal / n_lesion])


@pytest.mark.slow
def test_training_and_evaluation_read_the_compact_cache(demo_dir, tmp_path):
    """``cached.json`` trains and evaluates from ``cache_<size>.npz`` instead of the image files."""
    from custom.data import prepare_busi

    prepared = tmp_path / "prepared"
    prepare_busi(str(demo_dir / "raw"), str(prepared), dedup="none", cache_size=32)
    for name in ("images", "labels"):  # prove the originals are not read
        shutil.rmtree(prepared / name)
    cached = ["--dataset_dir", str(prepared), "--cache_file", str(prepared / "cache_32.npz"), *TINY_RUN]
    out = tmp_path / "run"
    run_bundle(
        "training",
        "--config_file",
        f"['{CONFIGS / 'train.json'}','{CONFIGS / 'cached.json'}']",
        "--epochs",
        "1",
        "--output_dir",
        str(out),
        *cached,
    )
    run_bundle(
        "evaluating",
        "--config_file",
        f"['{CONFIGS / 'train.json'}','{CONFIGS / 'cached.json'}','{CONFIGS / 'evaluate.json'}']",
        "--output_dir",
        str(out),
        *cached,
    )
    test_ids = sorted(r["id"] for r in json.loads((prepared / "fold0.json").read_text())["test"])
    with open(out / "per_image.csv") as f:
        assert sorted(r["id"] for r in csv.DictReader(f)) == test_ids
