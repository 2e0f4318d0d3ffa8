"""Calibration on validation data: the temperature, the lesion/normal operating point, and the rules that apply them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from custom.checkpoints import TrainedModel, write_card
from custom.errors import InputError
from custom.evaluation.calibration import (
    brier_score,
    calibrated_lesion_probability,
    choose_lesion_threshold,
    expected_calibration_error,
    fit_temperature,
)
from custom.networks.csb import csb_gate, predicted_class
from custom.transforms import MultiTaskDecisiond


def test_threshold_maximises_validation_accuracy_and_prefers_the_middle_among_equals():
    # a model trained on balanced batches scores most lesion images below 0.5
    truth = [0, 0, 1, 1, 1, 1, 1, 1]
    prob = [0.05, 0.10, 0.20, 0.30, 0.40, 0.60, 0.70, 0.80]
    choice = choose_lesion_threshold(truth, prob, "accuracy")
    assert choice["threshold"] == pytest.approx(0.15) and choice["accuracy"] == 1.0
    assert choice["accuracy_at_0.5"] == pytest.approx(5 / 8)
    assert choose_lesion_threshold([0, 1], [0.2, 0.8], "accuracy")["threshold"] == 0.5  # 0.5 already separates: kept
    with pytest.raises(ValueError):
        choose_lesion_threshold([], [])


def test_a_collapsed_classifier_is_named_instead_of_silently_thresholded(caplog):
    # the MONAI U-Net baseline's dead head gave every validation image one probability
    truth, prob = [0, 1, 1, 1, 1, 1], [0.5124] * 6
    with caplog.at_level("WARNING", logger="nunet"):
        choice = choose_lesion_threshold(truth, prob)
    assert choice["constant"] is True and choice["threshold"] == 0.5
    assert "every one of the 6 validation images has the lesion probability 0.5124" in caplog.text
    assert choose_lesion_threshold([0, 1], [0.2, 0.8])["constant"] is False


def test_brier_and_calibration_error_of_perfect_and_constant_scores():
    assert brier_score([0, 1], [0.0, 1.0]) == 0.0 and expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0
    assert brier_score([0, 1], [0.5, 0.5]) == 0.25 and expected_calibration_error([0, 1], [0.5, 0.5]) == 0.0
    assert expected_calibration_error([1, 1], [0.3, 0.3]) == pytest.approx(0.7)


def test_threshold_decides_the_class_and_the_hard_csb_gate_alike():
    cls = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.5, 0.0]])  # lesion probabilities 0.12, 0.88, 0.38
    assert predicted_class(cls).tolist() == [0, 1, 0]
    assert predicted_class(cls, 0.3).tolist() == [0, 1, 1]
    seg = torch.full((3, 1, 2, 2), 3.0)
    gated = csb_gate(seg, cls, "hard", 0.3)
    assert gated[0].sum() == 0 and gated[1].sum() > 0 and gated[2].sum() > 0
    three = torch.tensor([[1.0, 0.0, 0.5]])  # normal 0.51: argmax normal, lesion prob 0.49, malignant before benign
    assert predicted_class(three).tolist() == [0] and predicted_class(three, 0.4).tolist() == [2]


def test_the_default_operating_point_keeps_the_target_share_of_lesion_images():
    # 20 lesion images, one scored low; 4 normal images, one scored high: accuracy would give up the low lesion
    truth = [1] * 20 + [0] * 4
    prob = [0.1] + [0.5 + 0.02 * i for i in range(19)] + [0.05, 0.2, 0.3, 0.9]
    accurate = choose_lesion_threshold(truth, prob, "accuracy")
    assert accurate["sensitivity"] == pytest.approx(19 / 20)  # 0.95 already
    choice = choose_lesion_threshold(truth, prob, target_sensitivity=1.0)
    assert choice["operating_point"] == "sensitivity" and choice["target_sensitivity"] == 1.0
    assert choice["threshold"] == pytest.approx(0.075)  # the highest that keeps the lesion scored 0.1
    assert choice["sensitivity"] == 1.0 and choice["specificity"] == pytest.approx(1 / 4)
    default = choose_lesion_threshold(truth, prob)  # 0.95: one lesion of 20 may be lost, not two (0.51 would)
    assert default["target_sensitivity"] == 0.95 and default["threshold"] == 0.5
    assert default["sensitivity"] == 0.95 and default["specificity"] == 0.75
    for bad in ({"operating_point": "f1"}, {"target_sensitivity": 0.0}, {"target_sensitivity": 1.5}):
        with pytest.raises(InputError):
            choose_lesion_threshold(truth, prob, **bad)


def test_temperature_scaling_undoes_an_over_confident_classifier():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, 4000)
    truth = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)  # calibrated at temperature 1 for logits z
    logits = np.stack([np.zeros_like(z), 3.0 * z], axis=1)  # the network's: three times too confident
    class_prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    fit = fit_temperature(truth, class_prob)
    assert fit["temperature"] == pytest.approx(3.0, rel=0.1)
    assert fit["ece_after"] < fit["ece_before"] / 2 and fit["brier_after"] < fit["brier_before"]
    assert fit["nll_after"] < fit["nll_before"]
    assert fit_temperature([1, 1], class_prob[:2])["temperature"] == 1.0  # one class: nothing to learn


def test_calibrated_probabilities_from_recorded_ones_equal_those_from_the_logits():
    logits = torch.tensor([[1.0, 0.0, 0.5], [-2.0, 1.0, 3.0]])
    for t in (0.5, 1.0, 2.5):
        expected = 1 - torch.softmax(logits / t, dim=1)[:, 0]
        got = calibrated_lesion_probability(torch.softmax(logits, dim=1).numpy(), t)
        assert got == pytest.approx(expected.numpy(), abs=1e-6)


def test_the_decision_transform_applies_the_temperature_to_probabilities_threshold_and_gate():
    pred = {"cls": torch.tensor([0.0, 1.2]), "seg": torch.full((1, 4, 4), 3.0)}
    plain = MultiTaskDecisiond(lesion_threshold=0.7)({"pred": pred})
    cooled = MultiTaskDecisiond(lesion_threshold=0.7, temperature=2.0)({"pred": pred})
    assert plain["result"]["lesion_probability"] == pytest.approx(torch.sigmoid(torch.tensor(1.2)).item())
    assert cooled["result"]["lesion_probability"] == pytest.approx(torch.sigmoid(torch.tensor(0.6)).item())
    assert cooled["result"]["lesion_probability_uncalibrated"] == plain["result"]["lesion_probability"]
    assert cooled["result"]["temperature"] == 2.0 and "temperature" not in plain["result"]
    # 0.77 at temperature 1 passes the threshold 0.7, 0.65 calibrated does not: normal, and the hard gate empties the mask
    assert plain["result"]["predicted_class"] == "lesion" and plain["seg_pred"].sum() == 16
    assert cooled["result"]["predicted_class"] == "normal" and cooled["seg_pred"].sum() == 0
    for bad in (0.0, -1.0, float("inf"), True):
        with pytest.raises(InputError, match="--temperature"):
            MultiTaskDecisiond(temperature=bad)


def test_the_temperature_is_read_from_the_model_card(tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    assert TrainedModel(str(weights)).temperature == 1.0  # no card: the network's own probabilities
    write_card(weights, {"temperature": 1.7, "lesion_threshold": 0.3})
    assert TrainedModel(str(weights)).temperature == 1.7
    assert json.loads((tmp_path / "model.json").read_text())["temperature"] == 1.7


def test_the_reliability_diagram_shows_before_and_after_calibration(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import custom.report.figures as figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.append(fig))
    truth = [0, 0, 1, 1, 1, 1]
    before, after = [0.3, 0.6, 0.97, 0.98, 0.99, 0.99], [0.2, 0.4, 0.8, 0.85, 0.9, 0.9]
    rows = [{"lesion": y, "lesion_prob": a, "lesion_prob_uncalibrated": b} for y, a, b in zip(truth, after, before)]
    assert figures.plot_calibration(SimpleNamespace(per_image=rows, name="run"), tmp_path / "c.png")
    labels = [t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts()]
    assert labels[1] == (
        f"before calibration: Brier {brier_score(truth, before):.3f}, ECE {expected_calibration_error(truth, before):.3f}"
    )
    assert labels[2] == (
        f"after calibration: Brier {brier_score(truth, after):.3f}, ECE {expected_calibration_error(truth, after):.3f}"
    )
    plain = [{"lesion": y, "lesion_prob": a} for y, a in zip(truth, after)]  # not calibrated: one diagram
    assert figures.plot_calibration(SimpleNamespace(per_image=plain, name="run"), tmp_path / "d.png")
    assert [t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts()][1:] == [labels[2].split(": ", 1)[1]]
