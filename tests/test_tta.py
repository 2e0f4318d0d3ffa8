"""Test-time augmentation by flips (custom/engine/tta.py), checkpoint ensembles (custom/networks/ensemble.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import CONFIGS
from PIL import Image

from custom.engine import FlipTTAInferer
from custom.networks import average_probabilities


class PixelNetwork(torch.nn.Module):
    """Segmentation logits = the first input channel, class logits from the left half's mean: not flip-invariant."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        left = x[:, 0, :, : x.shape[-1] // 2].mean(dim=(1, 2))
        return {"seg": x[:, :1], "cls": torch.stack([-left, left], dim=1)}


def test_each_view_is_flipped_back_before_averaging():
    x = torch.randn(2, 3, 8, 10)
    single = FlipTTAInferer(flips=[[]])(x, PixelNetwork())
    assert set(single) == {"seg", "cls"}  # one view: the network's output as it is
    averaged = FlipTTAInferer(flips=[[], [0], [1], [0, 1]])(x, PixelNetwork())
    # a pixel-wise network gives the same probabilities in every view once flipped back
    torch.testing.assert_close(torch.sigmoid(averaged["seg"]), torch.sigmoid(x[:, :1]), atol=1e-5, rtol=0)
    # the class logits see different halves in the mirrored views: averaged probabilities, and their spread
    views = [PixelNetwork()(v)["cls"] for v in (x, x.flip(2), x.flip(3), x.flip(2, 3))]
    probs = torch.stack([torch.softmax(v, dim=1) for v in views])
    torch.testing.assert_close(torch.softmax(averaged["cls"], dim=1), probs.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(averaged["disagreement"], probs[..., 1].std(0, unbiased=False), atol=1e-6, rtol=0)


def test_average_of_identical_members_is_the_member_with_no_disagreement():
    out = {"seg": torch.randn(1, 1, 4, 4), "cls": torch.randn(1, 3)}
    avg = average_probabilities([out, out])
    torch.testing.assert_close(torch.sigmoid(avg["seg"]), torch.sigmoid(out["seg"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.softmax(avg["cls"], 1), torch.softmax(out["cls"], 1), atol=1e-6, rtol=0)
    assert float(avg["disagreement"]) == pytest.approx(0.0, abs=1e-7)


def test_views_of_an_ensemble_spread_over_every_member_and_view():
    """An ensemble under flip TTA: the disagreement is the spread of all member-view predictions (total variance)."""
    members = torch.randn(2, 3, 1, 2)  # view, member, batch, class logits
    views = [average_probabilities([{"cls": m} for m in view]) for view in members]  # each view: its ensemble
    combined = average_probabilities(views)
    every = 1.0 - torch.softmax(members, dim=-1)[..., 0]  # lesion probability of each view and member
    torch.testing.assert_close(combined["disagreement"], every.reshape(-1, 1).std(0, unbiased=False), atol=1e-6, rtol=0)


def test_inference_with_flip_tta_writes_the_disagreement(tmp_path):
    from generated import save_untrained_checkpoint
    from monai.bundle import run

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40), dtype=np.uint8)).save(images / "a.png")
    checkpoint = save_untrained_checkpoint(tmp_path / "model.pt")
    common = {
        "input_dir": str(images),
        "dataset_dir": str(tmp_path),
        "ckpt_path": str(checkpoint),
        "spatial_size": [32, 32],
        "logging_file": False,
        "cpu_runtime": "torch",
    }
    run("run", config_file=str(CONFIGS / "inference.json"), output_dir=str(tmp_path / "plain"), **common)
    run(
        "run",
        config_file=str(CONFIGS / "inference.json"),
        output_dir=str(tmp_path / "tta"),
        tta_flips=[[], [1]],
        **common,
    )
    plain, tta = (json.loads((tmp_path / name / "a.json").read_text()) for name in ("plain", "tta"))
    assert "tta_disagreement" not in plain and tta["tta_disagreement"] >= 0.0
    assert Image.open(tmp_path / "tta" / "a_seg.png").size == (40, 30)


def test_inference_ensembles_the_folds_of_a_run_folder(tmp_path):
    """``--ckpt_path <run>``: one member per fold*/model.pt, probabilities averaged, thresholds averaged."""
    from generated import save_untrained_checkpoint
    from monai.bundle import run

    from custom.checkpoints import TrainedModel, write_card

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 40), dtype=np.uint8)).save(images / "a.png")
    run_dir = tmp_path / "run"
    for k, threshold in ((0, 0.3), (1, 0.5), (10, 0.4)):
        (run_dir / f"fold{k}").mkdir(parents=True)
        checkpoint = save_untrained_checkpoint(run_dir / f"fold{k}" / "model.pt", seed=k)
        write_card(checkpoint, {"spatial_size": [32, 32], "lesion_threshold": threshold})
    trained = TrainedModel(run_dir)
    assert [p.parent.name for p in trained.paths] == ["fold0", "fold1", "fold10"]
    assert trained.lesion_threshold == pytest.approx(0.4) and len(set(trained.sha256)) == 3
    common = {"input_dir": str(images), "dataset_dir": str(tmp_path), "logging_file": False}
    config = str(CONFIGS / "inference.json")  # the ensemble through ONNX Runtime (the CPU default), members in PyTorch
    for name, flips in (("plain", [[]]), ("mirror", [[], [0]])):  # without and with flip TTA
        ensemble = tmp_path / f"ensemble_{name}"
        run("run", config_file=config, output_dir=str(ensemble), ckpt_path=str(run_dir), tta_flips=flips, **common)
        result = json.loads((ensemble / "a.json").read_text())
        assert result["lesion_threshold"] == pytest.approx(0.4) and result["tta_disagreement"] > 0  # different networks
        # the ensemble's probabilities are the mean of the members' (each with the same views), run one by one
        members = []
        for k in (0, 1, 10):
            out = tmp_path / f"member{k}_{name}"
            run("run", config_file=config, output_dir=str(out), ckpt_path=str(run_dir / f"fold{k}" / "model.pt"),
                cpu_runtime="torch", tta_flips=flips, **common)  # fmt: skip
            members.append(json.loads((out / "a.json").read_text())["class_probabilities"]["lesion"])
        assert result["class_probabilities"]["lesion"] == pytest.approx(np.mean(members), abs=1e-5)
        assert Image.open(ensemble / "a_seg.png").size == (40, 30)


def test_flips_and_pixel_spacing_are_checked_before_any_image_is_read():
    from custom.errors import InputError
    from custom.transforms import LesionMeasurementsd

    for flips in ([], [[5]], [[0], [0, 2]]):
        with pytest.raises(InputError, match="--tta_flips"):
            FlipTTAInferer(flips=flips)
    for spacing in ([0.1], [0.0, 0.1], [-0.1, 0.1], [float("nan"), 0.1]):
        with pytest.raises(InputError, match="--pixel_spacing"):
            LesionMeasurementsd(pixel_spacing=spacing)


def test_axis_0_mirrors_left_right_in_the_loaded_layout(tmp_path):
    """MONAI's PIL reader puts the width first: flipping spatial axis 0 mirrors the picture left-right."""
    from custom.transforms import LoadPictured

    picture = np.zeros((4, 6), dtype=np.uint8)
    picture[:, 0] = 255  # the left column
    Image.fromarray(picture).save(tmp_path / "a.png")
    loaded = LoadPictured(keys="image")({"image": str(tmp_path / "a.png")})["image"]
    assert tuple(loaded.shape) == (1, 6, 4)  # channel, width, height
    mirrored = np.asarray(loaded.flip(1))[0].T  # spatial axis 0, back to rows x columns
    assert mirrored[:, -1].tolist() == [255] * 4 and mirrored[:, 0].tolist() == [0] * 4
