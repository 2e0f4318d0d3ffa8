"""AMTL loss, Focal-BCE and Dice against the paper's formulas (N-Unet paper, section 3.5)."""

import math

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from custom.data import class_weights
from custom.losses import AMTLLoss, FocalCrossEntropyLoss


class ConstantLoss(torch.nn.Module):
    """A task loss that returns a fixed value, to test the combination rule alone."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, pred, target):
        return pred.sum() * 0 + self.value


def _amtl(cls_value=0.8, seg_value=0.3, **kw):
    return AMTLLoss({"cls": ConstantLoss(cls_value), "seg": ConstantLoss(seg_value)}, **kw)


def _outputs():
    pred = {"cls": torch.zeros(2, 2, requires_grad=True), "seg": torch.zeros(2, 1, 4, 4, requires_grad=True)}
    target = {"cls": torch.tensor([0, 1]), "seg": torch.zeros(2, 1, 4, 4)}
    return pred, target


def test_amtl_at_initialisation_is_quarter_of_the_sum():
    pred, target = _outputs()
    loss = _amtl(0.8, 0.3)
    assert float(loss(pred, target)) == pytest.approx((0.8 + 0.3) / 4)
    assert all(float(s) == 0.0 for s in loss.log_vars.values())


def test_amtl_gradient_in_s_vanishes_at_log_task_loss():
    pred, target = _outputs()
    loss = _amtl(0.8, 0.3)
    with torch.no_grad():
        loss.log_vars["cls"].fill_(math.log(0.8))
        loss.log_vars["seg"].fill_(math.log(0.3))
    loss(pred, target).backward()
    for s in loss.log_vars.values():
        assert abs(float(s.grad)) < 1e-6
    # away from the optimum the gradient is not zero: d/ds = (1/D)(0.5 - 0.5 exp(-s) L)
    loss2 = _amtl(0.8, 0.3)
    loss2(pred, target).backward()
    assert float(loss2.log_vars["cls"].grad) == pytest.approx((0.5 - 0.5 * 0.8) / 2)


def test_amtl_single_task_and_fixed_weights():
    pred, target = _outputs()
    seg_only = {"seg": pred["seg"]}
    assert float(_amtl(0.8, 0.3)(seg_only, target)) == pytest.approx(0.3 / 2)
    fixed = _amtl(0.8, 0.3, learn_weights=False, fixed_weights={"cls": 2.0})
    assert len(list(fixed.parameters())) == 0
    assert float(fixed(pred, target)) == pytest.approx(2.0 * 0.8 + 0.3)
    with pytest.raises(KeyError, match="none of the loss tasks"):
        _amtl()({"other": pred["seg"]}, target)
    with pytest.raises(ValueError, match="no loss"):
        _amtl(fixed_weights={"typo": 1.0}, learn_weights=False)


def test_amtl_parameters_are_saved_and_restored():
    loss = _amtl()
    with torch.no_grad():
        loss.log_vars["cls"].fill_(0.7)
    restored = _amtl()
    restored.load_state_dict(loss.state_dict())
    assert float(restored.log_vars["cls"]) == pytest.approx(0.7)
    assert restored.task_weights()["cls"] == pytest.approx(0.5 * math.exp(-0.7))


def test_focal_equals_bce_with_gamma_zero_and_unit_weight():
    torch.manual_seed(0)
    logits = torch.randn(16, 2)
    target = torch.randint(0, 2, (16,))
    focal = FocalCrossEntropyLoss(gamma=0.0, class_weights=[1.0, 1.0])(logits, target)
    p_lesion = torch.softmax(logits, dim=1)[:, 1]
    bce = F.binary_cross_entropy(p_lesion, target.float())
    assert float(focal) == pytest.approx(float(bce), rel=1e-5)


def test_focal_weights_and_focusing_follow_the_formula():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0], [0.5, 0.2]])
    target = torch.tensor([1, 0, 1])
    w = 0.25
    p = torch.softmax(logits, dim=1)
    pt = p[torch.arange(3), target]
    weights = torch.tensor([w if y == 1 else 1.0 for y in target])
    expected = (weights * (1 - pt) ** 2 * -torch.log(pt)).mean()
    got = FocalCrossEntropyLoss(gamma=2.0, class_weights=[1.0, w])(logits, target)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_three_class_focal_matches_weighted_cross_entropy_at_gamma_zero():
    torch.manual_seed(1)
    logits = torch.randn(12, 3)
    target = torch.randint(0, 3, (12,))
    weights = torch.tensor([1.0, 0.5, 2.0])
    got = FocalCrossEntropyLoss(gamma=0.0, class_weights=weights.tolist())(logits, target)
    expected = (F.cross_entropy(logits, target, reduction="none") * weights[target]).mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_dice_loss_against_hand_computed_case():
    # probabilities after the sigmoid: [0.8, 0.6, 0.1, 0.0] against [1, 1, 0, 0]
    probs = torch.tensor([0.8, 0.6, 0.1, 1e-12]).reshape(1, 1, 2, 2)
    logits = torch.logit(probs)
    target = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
    eps = 1e-5
    expected = 1 - (2 * (0.8 + 0.6) + eps) / ((0.8 + 0.6 + 0.1) + 2 + eps)
    got = DiceLoss(sigmoid=True, smooth_nr=eps, smooth_dr=eps, batch=True)(logits, target)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_class_weights_follow_training_split_counts():
    records = [{"lesion": 1, "class": 1}] * 6 + [{"lesion": 1, "class": 2}] * 3 + [{"lesion": 0, "class": 0}] * 3
    assert class_weights(records, 2) == pytest.approx([1.0, 3 / 9])
    assert class_weights(records, 3) == pytest.approx([1.0, 3 / 6, 3 / 3])
    assert class_weights([{"image": "a.png"}], 2) == [1.0, 1.0]
