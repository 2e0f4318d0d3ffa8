"""The lesion/normal threshold chosen on validation data and the decision rule that applies it."""

from __future__ import annotations

import pytest
import torch

from custom.evaluation.calibration import brier_score, choose_lesion_threshold, expected_calibration_error
from custom.networks.csb import csb_gate, predicted_class


def test_threshold_maximises_validation_accuracy_and_prefers_the_middle_among_equals():
    # a model trained on balanced batches scores most lesion images below 0.5
    truth = [0, 0, 1, 1, 1, 1, 1, 1]
    prob = [0.05, 0.10, 0.20, 0.30, 0.40, 0.60, 0.70, 0.80]
    choice = choose_lesion_threshold(truth, prob)
    assert choice["threshold"] == pytest.approx(0.15) and choice["accuracy"] == 1.0
    assert choice["accuracy_at_0.5"] == pytest.approx(5 / 8)
    assert choose_lesion_threshold([0, 1], [0.2, 0.8])["threshold"] == 0.5  # 0.5 already separates: kept
    with pytest.raises(ValueError):
        choose_lesion_threshold([], [])


def test_a_collapsed_classifier_is_named_instead_of_silently_thresholded(caplog):
    # the MONAI U-Net baseline's dead head gave every validation image one probability
    truth, prob = [0, 1, 1, 1, 1, 1], [0.5124] * 6
    with caplog.at_level("WARNING", logger="custom.evaluation.calibration"):
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
