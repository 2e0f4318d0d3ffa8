"""Aumente-Maestro et al. and Multi-task U-Net: oversampling, prediction refining, MT-UNet++,
the deep-supervision Dice + focal loss, and the two peer configs through the bundle."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from conftest import CONFIGS, run_bundle
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.losses import DiceLoss

from custom.data import load_datalist
from custom.data.oversampling import oversample, replication_factors
from custom.losses import FocalCrossEntropyLoss
from custom.losses.deep_supervision import DeepSupervisionDiceFocalLoss, InverseDepthDeepSupervisionLoss
from custom.networks import get_network
from custom.networks.mt_unetpp import MTUNetPlusPlus
from custom.transforms import MultiTaskDecisiond

AUMENTE_MAESTRO = CONFIGS / "peer_aumente_maestro.json"
MULTITASK_UNET = CONFIGS / "peer_multitask_unet.json"
SMALL = (8, 16, 32, 64, 128, 8)  # narrow UNet++ widths: wiring tests run fast on CPU


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """This module's tests and bundle runs use one intra-op thread.

    On the shared 2-core test machine two threads contend: a training step of the test network measured
    about 3 s with two threads against 0.35 s with one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # the bundle subprocesses
        yield
    torch.set_num_threads(threads)


def _records(classes, key="class"):
    return [{"id": f"case{i}", key: c} for i, c in enumerate(classes)]


# ---------------------------------------------------------------- deterministic oversampling
def test_oversampling_reproduces_the_papers_example():
    # Curated BUSI (Aumente-Maestro et al., Table 3): 222 benign (49.3 %), 164 malignant (36.4 %), 64 normal (14.2 %)
    records = _records([1] * 222 + [2] * 164 + [0] * 64)
    assert replication_factors(records) == {0: 7, 1: 2, 2: 3}  # the paper's 2 / 3 / 7; ceil would give 3 / 3 / 8
    counts = [sum(r["class"] == c for r in oversample(records)) for c in range(3)]
    assert counts == [448, 444, 492]  # normal 32.4 %, benign 32.1 %, malignant 35.5 % (paper: 32.2 / 32.2 / 35.6)


def test_oversampling_small_hand_case():
    # N = 10: normal 1/10 -> 10, benign 4/10 -> 2.5 -> 2 (round half to even), malignant 5/10 -> 2
    records = _records([0, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    out = oversample(records)
    assert len(out) == 10 + 4 * 2 + 5 * 2
    assert [r["id"] for r in out[:12]] == ["case0"] * 10 + ["case1"] * 2  # record order kept, copies adjacent
    assert out[0] == records[0] and out[0] is not records[0] and out[0] is not out[1]
    # two classes read the "lesion" field: normal 1/3 -> 3, lesion 2/3 -> 1.5 -> 2
    binary = _records([0, 1, 1], key="lesion")
    assert replication_factors(binary, num_classes=2) == {0: 3, 1: 2}
    assert [r["id"] for r in oversample(binary, num_classes=2)] == ["case0"] * 3 + ["case1"] * 2 + ["case2"] * 2


def test_oversampling_without_class_field_or_with_bad_input():
    plain = [{"image": "a.png"}, {"image": "b.png"}]
    assert oversample(plain) == plain  # a MONAI Label datastore: left as it is
    assert oversample([]) == [] and replication_factors([]) == {}
    with pytest.raises(ValueError, match="num_classes"):
        oversample(_records([0, 1]), num_classes=4)
    with pytest.raises(ValueError, match="outside"):
        oversample(_records([0, 3]))


def test_config_oversamples_training_only(demo_dir):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(AUMENTE_MAESTRO)])
    parser.update({"dataset_dir": str(demo_dir)})
    datalist = str(demo_dir / "fold0.json")
    training = load_datalist(datalist, "training")
    assert parser.get_parsed_content("train#dataset#data") == oversample(training)
    assert len(oversample(training)) > len(training)
    assert parser.get_parsed_content("validate#dataset#data") == load_datalist(datalist, "validation")
    # evaluation over the same override reads the test split as it is
    parser.read_config([str(CONFIGS / "train.json"), str(AUMENTE_MAESTRO), str(CONFIGS / "evaluate.json")])
    parser.update({"dataset_dir": str(demo_dir)})
    assert parser.get_parsed_content("validate#dataset#data") == load_datalist(datalist, "test")


# ---------------------------------------------------------------- prediction refining
def _sample(cls_logits, seg_logit):
    seg = torch.full((1, 4, 4), seg_logit)
    seg[0, 0, 0] = -5.0  # 15 lesion pixels when seg_logit > 0
    return {
        "image": MetaTensor(torch.zeros(1, 4, 4)),
        "pred": {"seg": seg, "cls": torch.tensor(cls_logits)},
        "label": {"seg": torch.ones(1, 4, 4), "cls": torch.tensor(1)},
    }


NORMAL, BENIGN, MALIGNANT = [3.0, -3.0, -3.0], [-3.0, 3.0, -3.0], [-3.0, -3.0, 3.0]


def _refined(sample):
    return MultiTaskDecisiond(csb_mode="off", num_classes=3, refine=True)(sample)


def test_refining_clears_the_mask_of_an_image_classified_normal():
    out = _refined(_sample(NORMAL, 2.0))
    assert out["seg_pred"].sum() == 0 and out["seg_prob"].max() == 0
    assert int(out["cls_pred"][0]) == 0 and out["lesion_pred_onehot"].tolist() == [1.0, 0.0]
    assert out["result"]["predicted_class"] == "normal" and out["result"]["lesion_pixels"] == 0
    assert out["result"]["refining"] == {"mask_cleared": True, "class_set_to_normal": False}


@pytest.mark.parametrize("cls_logits", [BENIGN, MALIGNANT], ids=["benign", "malignant"])
def test_refining_turns_a_lesion_class_with_an_empty_mask_into_normal(cls_logits):
    out = _refined(_sample(cls_logits, -2.0))
    assert out["seg_pred"].sum() == 0
    assert int(out["cls_pred"][0]) == 0 and out["lesion_pred_onehot"].tolist() == [1.0, 0.0]
    assert out["result"]["predicted_class"] == "normal"
    assert out["result"]["refining"] == {"mask_cleared": False, "class_set_to_normal": True}
    # the probabilities stay the network's (ROC-AUC ranks them); only the decisions are refined
    assert int(out["cls_prob"].argmax()) != 0 and float(out["lesion_prob"][0]) > 0.9


def test_refining_keeps_a_consistent_lesion_prediction():
    sample = _sample(MALIGNANT, 2.0)
    refined = _refined(sample)
    plain = MultiTaskDecisiond(csb_mode="off", num_classes=3)(sample)
    assert refined["result"]["refining"] == {"mask_cleared": False, "class_set_to_normal": False}
    assert refined["seg_pred"].sum() == 15 and refined["result"]["predicted_class"] == "malignant"
    for key in ("seg_prob", "seg_pred", "cls_pred", "lesion_pred_onehot", "cls_prob"):
        assert torch.equal(refined[key], plain[key])


def test_refining_is_off_by_default():
    for cls_logits, seg_logit in [(NORMAL, 2.0), (BENIGN, -2.0)]:
        out = MultiTaskDecisiond(csb_mode="off", num_classes=3)(_sample(cls_logits, seg_logit))
        assert "refining" not in out["result"]
        assert out["seg_pred"].sum() == (15 if seg_logit > 0 else 0)  # the inconsistent pair is left as predicted
        assert int(out["cls_pred"][0]) == int(torch.tensor(cls_logits).argmax())
        assert out["lesion_pred_onehot"].tolist() == ([1.0, 0.0] if cls_logits is NORMAL else [0.0, 1.0])


# ---------------------------------------------------------------- MT-UNet++
@pytest.mark.parametrize("num_classes", [2, 3])
def test_mt_unetpp_outputs_in_train_and_eval_mode(num_classes):
    torch.manual_seed(0)
    net = get_network("mt_unetpp", in_channels=1, num_classes=num_classes, features=SMALL)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        train_out = net.train()(x)
        eval_out = net.eval()(x)
    assert set(train_out) == {"seg", "cls", "aux_seg"} and set(eval_out) == {"seg", "cls"}
    assert [tuple(a.shape) for a in train_out["aux_seg"]] == [(2, 1, 64, 64)] * 3
    for out in (train_out, eval_out):
        assert out["seg"].shape == (2, 1, 64, 64) and out["cls"].shape == (2, num_classes)


def test_mt_unetpp_outputs_are_monai_unetpp_outputs_final_first():
    torch.manual_seed(0)
    net = MTUNetPlusPlus(features=SMALL).train()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        out = net(x)
        x01, x02, x03, x04 = net.backbone(x)  # MONAI's order: shallowest sub-network first
    torch.testing.assert_close(out["seg"], x04)
    for got, expected in zip(out["aux_seg"], [x03, x02, x01]):
        torch.testing.assert_close(got, expected)
    assert not net.backbone.upcat_3_1._forward_hooks  # the feature hook lives only during forward


# MONAI's UpCat compares feature sizes in Python to pad odd sizes: the trace holds for the traced input size
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_mt_unetpp_traces_and_matches_eager():
    net = MTUNetPlusPlus(features=SMALL, num_classes=3).eval()
    x = torch.randn(2, 1, 32, 32)
    traced = torch.jit.trace(net, x, strict=False)
    with torch.no_grad():
        eager, trace = net(x), traced(x)
    assert set(trace) == {"seg", "cls"}
    for key in eager:
        torch.testing.assert_close(trace[key], eager[key])


def test_mt_unetpp_head_width_and_options():
    net = MTUNetPlusPlus()  # UNet++ widths 32..512: classifier input 256 + 512 + 256 channels -> Conv 512 -> FC 256
    head = net.classification_head
    assert head.conv.conv.in_channels == 1024 and head.conv.conv.out_channels == 512
    assert (head.classifier.fc1.in_features, head.classifier.fc1.out_features, head.classifier.fc2.out_features) == (
        512,
        256,
        3,
    )
    with torch.no_grad():
        out = MTUNetPlusPlus(features=SMALL, deep_supervision=False).train()(torch.randn(1, 1, 32, 32))
    assert set(out) == {"seg", "cls"}
    with pytest.raises(ValueError, match="num_classes"):
        MTUNetPlusPlus(num_classes=1)
    with pytest.raises(ValueError, match="six widths"):
        MTUNetPlusPlus(features=(8, 16, 32, 64, 128))


# ---------------------------------------------------------------- loss
def test_deep_supervision_weights_are_one_over_i():
    ds = InverseDepthDeepSupervisionLoss(lambda pred, target: pred.mean())
    outputs = [torch.full((1, 1, 4, 4), value) for value in (1.0, 2.0, 3.0, 4.0)]
    assert float(ds(outputs, torch.zeros(1, 1, 4, 4))) == pytest.approx(1 + 2 / 2 + 3 / 3 + 4 / 4)
    assert float(ds(outputs[:1], torch.zeros(1, 1, 4, 4))) == pytest.approx(1.0)


def test_loss_by_hand_with_and_without_aux():
    # sigmoid(0) = 0.5 on 4 pixels, 2 of them lesion: Dice = (2 * 1 + 1) / (4 * 0.25 + 2 + 1) = 3/4 (eq. 1, eps 1)
    # an empty ground truth: Dice = (0 + 1) / (1 + 0 + 1) = 1/2; focal with p = 1/3: (2/3)^2 ln 3
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    pred = {"seg": torch.zeros(2, 1, 2, 2), "cls": torch.zeros(2, 3)}
    target = {"seg": mask, "cls": torch.tensor([2, 0])}
    loss = DeepSupervisionDiceFocalLoss(lambda_seg=0.85)
    seg, focal = (0.25 + 0.5) / 2, (2 / 3) ** 2 * math.log(3)
    assert loss.task_terms(pred, target)["seg"].item() == pytest.approx(seg)
    assert loss.task_terms(pred, target)["cls"].item() == pytest.approx(focal)
    assert loss(pred, target).item() == pytest.approx(0.85 * seg + 0.15 * focal)
    with_aux = {**pred, "aux_seg": [torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)]}
    assert loss(with_aux, target).item() == pytest.approx(0.85 * seg * (1 + 1 / 2 + 1 / 3) + 0.15 * focal)
    assert loss.task_weights() == pytest.approx({"seg": 0.85, "cls": 0.15})
    with pytest.raises(ValueError, match="lambda_seg"):
        DeepSupervisionDiceFocalLoss(lambda_seg=1.5)


def test_loss_matches_monai_dice_and_project_focal_on_random_input():
    torch.manual_seed(0)
    pred = {"seg": torch.randn(3, 1, 8, 8), "cls": torch.randn(3, 3), "aux_seg": [torch.randn(3, 1, 8, 8)]}
    target = {"seg": (torch.rand(3, 1, 8, 8) > 0.5).float(), "cls": torch.tensor([[0], [1], [2]])}
    dice = DiceLoss(sigmoid=True, squared_pred=True, smooth_nr=1.0, smooth_dr=1.0)
    expected = 0.4 * (dice(pred["seg"], target["seg"]) + dice(pred["aux_seg"][0], target["seg"]) / 2)
    expected += 0.6 * FocalCrossEntropyLoss(gamma=2.0)(pred["cls"], target["cls"])
    torch.testing.assert_close(DeepSupervisionDiceFocalLoss(lambda_seg=0.4)(pred, target), expected)


def test_network_and_loss_learn_a_fixed_batch():
    torch.manual_seed(0)
    net = MTUNetPlusPlus(features=SMALL).train()
    loss_fn = DeepSupervisionDiceFocalLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    image = torch.rand(2, 1, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 8:20, 10:22] = 1.0
    image[0, :, 8:20, 10:22] += 1.0  # a bright lesion in image 0, image 1 is normal
    target = {"seg": mask, "cls": torch.tensor([2, 0])}
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = loss_fn(net(image), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


# ---------------------------------------------------------------- configs and the bundle
def test_multitask_unet_is_the_aumente_maestro_recipe_on_the_attention_unet(demo_dir):
    parsers = {}
    for name, stack in (("am", [AUMENTE_MAESTRO]), ("mt", [AUMENTE_MAESTRO, MULTITASK_UNET])):
        parsers[name] = ConfigParser()
        parsers[name].read_config([str(CONFIGS / "train.json"), *map(str, stack)])
    am, mt = (p.get() for p in parsers.values())
    assert am.pop("network_def")["name"] == "mt_unetpp" and mt.pop("network_def")["name"] == "attention_unet"
    mt.pop("_desc_")
    assert am == mt


def test_config_recipe(demo_dir):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(AUMENTE_MAESTRO)])
    parser.update({"dataset_dir": str(demo_dir), "spatial_size": [64, 64], "network_def#features": list(SMALL)})
    optimizer = parser.get_parsed_content("optimizer")
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == 1e-4
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(
        list(parser.get_parsed_content("network").parameters())
    )
    scheduler = parser.get_parsed_content("lr_scheduler")
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (scheduler.factor, scheduler.patience) == (0.5, 20)
    assert parser["early_stop_patience"] == 50 and parser["lr_step_metric"] == "val_loss"
    postprocessing = parser.get_parsed_content("validate#postprocessing").transforms
    decision = next(t for t in postprocessing if isinstance(t, MultiTaskDecisiond))
    assert decision.refine and decision.csb_mode == "off" and decision.num_classes == 3


@pytest.fixture(scope="module")
def trained_run(demo_dir, tmp_path_factory):
    """Training with the stopping rules forced to fire: no validation loss ever counts as an improvement.

    ReduceLROnPlateau with a relative threshold of 1 and patience 0 halves the learning rate after every
    validation; early stopping with patience 1 and an unreachable ``min_delta`` stops after epoch 2 of 3.
    """
    out = tmp_path_factory.mktemp("aumente_maestro")
    run_bundle(
        "training", "--config_file", f"['{CONFIGS / 'train.json'}','{AUMENTE_MAESTRO}']",
        "--dataset_dir", str(demo_dir), "--output_dir", str(out), "--spatial_size", "[64,64]", "--batch_size", "2",
        "--num_workers", "0", "--epochs", "3", "--network_def#features", str(list(SMALL)).replace(" ", ""),
        "--lr_patience", "0", "--lr_scheduler#threshold", "1.0", "--early_stop_patience", "1",
        "--train#handlers#7#min_delta", "1e9",
    )  # fmt: skip
    return out


@pytest.mark.slow
def test_bundle_trains_with_plateau_schedule_and_early_stopping(trained_run):
    assert (trained_run / "model.pt").is_file()
    log = [json.loads(line) for line in (trained_run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]  # stopped early
    # halved after each validation; the log gives the rate after the epoch's step (as for every schedule)
    assert [r["lr"] for r in log] == pytest.approx([5e-5, 2.5e-5])
    assert all(math.isfinite(r["val_loss"]) for r in log)
    assert log[0]["weight_seg"] == pytest.approx(0.85)


@pytest.mark.slow
def test_bundle_evaluation_refines_predictions(trained_run, demo_dir):
    run_bundle(
        "evaluating", "--config_file", f"['{CONFIGS / 'train.json'}','{AUMENTE_MAESTRO}','{CONFIGS / 'evaluate.json'}']",
        "--dataset_dir", str(demo_dir), "--output_dir", str(trained_run), "--spatial_size", "[64,64]",
        "--batch_size", "2", "--num_workers", "0", "--network_def#features", str(list(SMALL)).replace(" ", ""),
    )  # fmt: skip
    with open(trained_run / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(json.loads((demo_dir / "fold0.json").read_text())["test"])
    for row in rows:  # refined: a lesion decision exactly when the mask has lesion pixels
        assert int(row["lesion_pred"]) == (int(row["pred_area"]) > 0), row


@pytest.mark.slow
def test_multitask_unet_trains_one_epoch_through_the_bundle(demo_dir, tmp_path):
    run_bundle(
        "training", "--config_file", f"['{CONFIGS / 'train.json'}','{AUMENTE_MAESTRO}','{MULTITASK_UNET}']",
        "--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path), "--spatial_size", "[64,64]", "--batch_size", "2",
        "--num_workers", "0", "--epochs", "1", "--network_def#channels", "[8,16,32,64,128]",
    )  # fmt: skip
    assert (tmp_path / "model.pt").is_file()
