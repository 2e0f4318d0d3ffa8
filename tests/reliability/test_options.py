"""Training options checked before any work starts, in one line naming the key (custom/engine/options.py)."""

from __future__ import annotations

import pytest
from conftest import CONFIGS

from custom.engine import check_training_options, set_determinism
from custom.errors import InputError, one_line
from custom.networks import get_network

GOOD = {
    "spatial_size": [64, 96],
    "batch_size": 6,
    "epochs": 10,
    "val_interval": 1,
    "num_classes": 2,
    "learning_rate": 1e-4,
    "csb_mode": "hard",
}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "spatial_size",
            [30, 30],
            "--spatial_size [30, 30]: each side must be a multiple of 16 for this network "
            "(it halves the image 4 times); try [32, 32].",
        ),
        ("spatial_size", [0, 64], "--spatial_size [0, 64]: expected two positive whole numbers"),
        ("spatial_size", "256", "--spatial_size '256': expected two positive whole numbers"),
        ("batch_size", 0, "--batch_size 0: expected a whole number of at least 1."),
        ("epochs", 2.5, "--epochs 2.5: expected a whole number of at least 1."),
        ("val_interval", -1, "--val_interval -1: expected a whole number of at least 1."),
        ("num_classes", 4, "--num_classes 4: expected 2 (normal, lesion) or 3 (normal, benign, malignant)."),
        ("learning_rate", float("inf"), "--learning_rate inf: expected a finite number above 0"),
        ("learning_rate", 0, "--learning_rate 0: expected a finite number above 0"),
        ("csb_mode", "medium", "csb_mode 'medium' is unknown; use one of 'hard', 'soft', 'off'."),
        ("num_workers", -1, "--num_workers -1: expected a whole number of at least 0."),
        ("early_stop_patience", 0, "--early_stop_patience 0: expected a whole number of at least 1."),
        ("lesion_threshold", "foo", "--lesion_threshold 'foo': expected null or a probability in [0, 1]."),
        ("lesion_threshold", 1.5, "--lesion_threshold 1.5: expected null or a probability in [0, 1]."),
    ],
)
def test_each_option_out_of_range_is_one_line_naming_it(key, value, message):
    with pytest.raises(InputError) as error:
        check_training_options(**{**GOOD, key: value}, network=get_network("nunet", features=(4, 8, 16, 32, 64)))
    assert one_line(error.value).startswith(message)


def test_an_unknown_mixed_precision_type_is_one_line():
    from custom.engine.amp import torch_dtype

    with pytest.raises(InputError) as error:
        torch_dtype("foo")
    assert one_line(error.value) == "--amp_dtype 'foo': use float16 or bfloat16."


def test_input_channels_other_than_1_or_3_are_one_line(demo_dir, tmp_path):
    from monai.bundle import run

    with pytest.raises(Exception) as error:
        run("training", config_file=str(CONFIGS / "train.json"), logging_file=False, output_dir=str(tmp_path),
            dataset_dir=str(demo_dir), in_channels=2, spatial_size=[32, 32], epochs=1, num_workers=0)  # fmt: skip
    assert one_line(error.value) == "--in_channels 2: the images are read as 1 (grayscale) or 3 channels."


@pytest.mark.parametrize("seed", ["abc", -1, 1.5])
def test_a_seed_that_is_not_a_whole_number_is_one_line(seed):
    with pytest.raises(InputError) as error:
        set_determinism(seed)
    assert one_line(error.value) == f"--seed {seed!r}: expected a whole number of at least 0."


def test_good_options_pass_and_networks_without_a_divisor_take_any_size():
    assert check_training_options(**GOOD, network=get_network("nunet", features=(4, 8, 16, 32, 64)))
    assert check_training_options(**{**GOOD, "spatial_size": [30, 30]}, network=None)


def test_the_bundle_checks_the_options_before_loading_data(tmp_path):
    from monai.bundle import run

    with pytest.raises(Exception) as error:
        run(
            "training",
            config_file=str(CONFIGS / "train.json"),
            logging_file=False,
            output_dir=str(tmp_path),
            dataset_dir=str(tmp_path / "no_such_data"),
            spatial_size=[30, 30],
        )
    assert one_line(error.value).startswith("--spatial_size [30, 30]: each side must be a multiple of 16")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"spatial_size": [30, 30]}, "--spatial_size [30, 30]: each side must be a multiple of 16"),
        ({"cpu_runtime": "tensorrt"}, "--cpu_runtime 'tensorrt': use one of onnxruntime, torch."),
        ({"tta_flips": [[2]]}, "--tta_flips [[2]]: expected a list of views, each a list of the axes it flips: 0"),
        ({"pixel_spacing": [0.1]}, "--pixel_spacing [0.1]: expected two positive millimetre values"),
        ({"lesion_threshold": 2}, "--lesion_threshold 2: expected null or a probability in [0, 1]."),
    ],
)
def test_inference_checks_its_options_before_reading_images(tmp_path, override, message):
    from monai.bundle import run

    (tmp_path / "images").mkdir()
    with pytest.raises(Exception) as error:
        run(
            "run",
            config_file=str(CONFIGS / "inference.json"),
            logging_file=False,
            dataset_dir=str(tmp_path),
            input_dir=str(tmp_path / "images"),
            output_dir=str(tmp_path / "out"),
            **override,
        )
    assert (one_line(error.value) or repr(error.value)).startswith(message)


@pytest.mark.parametrize(
    ("config", "override", "message"),
    [
        ("train.json", {"spatial_siz": [32, 32]}, "--spatial_siz: no such key in the config files of this run; did you mean --spatial_size?"),
        ("train.json", {"learningrate": 1e-3}, "--learningrate: no such key in the config files of this run; did you mean --learning_rate?"),
        ("inference.json", {"input_dirs": "x"}, "--input_dirs: no such key in the config files of this run; did you mean --input_dir?"),
    ],
)  # fmt: skip
def test_a_mistyped_override_is_refused_before_any_work(tmp_path, config, override, message):
    """MONAI adds an unknown key without a word: ``--spatial_siz`` used to train at the default 256x256."""
    from monai.bundle import run

    with pytest.raises(Exception) as error:
        run("run" if config == "inference.json" else "training", config_file=str(CONFIGS / config),
            logging_file=False, output_dir=str(tmp_path / "out"), dataset_dir=str(tmp_path), **override)  # fmt: skip
    assert one_line(error.value) == message
    assert not (tmp_path / "out").exists()


def test_overrides_of_parts_of_an_item_are_left_to_the_config(tmp_path):
    """``network_def#weights`` adds an argument the config does not spell out: not a typo."""
    from monai.bundle import run

    with pytest.raises(Exception) as error:
        run("training", config_file=str(CONFIGS / "train.json"), logging_file=False, output_dir=str(tmp_path / "out"),
            dataset_dir=str(tmp_path), **{"network_def#weights": str(tmp_path / "w.pt")})  # fmt: skip
    assert one_line(error.value) == f"checkpoint '{tmp_path / 'w.pt'}' does not exist."  # taken as the argument it is
