"""Recipe v3 (recipe_cpu_v3.json): draws balanced across the datasets of a merged set, and dropout in the
classification head."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from conftest import CONFIGS

from custom.configs import bundle_parser
from custom.data import lesion_share_sampler
from custom.networks import get_network
from custom.networks.blocks import ClassificationHead

RECIPE = [str(CONFIGS / "train.json"), *(str(CONFIGS / f"recipe_cpu_v{v}.json") for v in (2, 3))]


def _draws(records: list[dict], **kwargs) -> Counter:
    torch.manual_seed(0)
    sampler = lesion_share_sampler(records, **kwargs)
    return Counter((records[i]["dataset"], records[i]["lesion"]) for _ in range(100) for i in sampler)


def test_balanced_draws_take_the_scanner_out_of_the_class():
    # the confound of BUSI + BUS-UCLM in small: 83 % lesion images in one dataset, 41 % in the other
    records = [{"dataset": "a", "lesion": int(i < 83)} for i in range(100)]
    records += [{"dataset": "b", "lesion": int(i < 41)} for i in range(100)]
    plain = _draws(records, lesion_share=0.7)
    share_a = plain[("a", 1)] / (plain[("a", 0)] + plain[("a", 1)])
    assert share_a > 0.8  # without balance a draw from "a" is almost always a lesion image
    balanced = _draws(records, lesion_share=0.7, balance_datasets=True)
    total = sum(balanced.values())
    for dataset in ("a", "b"):
        drawn = balanced[(dataset, 0)] + balanced[(dataset, 1)]
        assert balanced[(dataset, 1)] / drawn == pytest.approx(0.7, abs=0.02)
        assert drawn / total == pytest.approx(0.5, abs=0.02)


def test_a_dataset_without_normal_images_leaves_the_normal_draws_to_the_others():
    records = [{"dataset": "a", "lesion": 1}] * 50 + [{"dataset": "b", "lesion": int(i < 20)} for i in range(50)]
    drawn = _draws(records, lesion_share=0.6, balance_datasets=True)
    total = sum(drawn.values())
    assert ("a", 0) not in drawn
    assert drawn[("b", 0)] / total == pytest.approx(0.4, abs=0.02)
    assert drawn[("a", 1)] / total == pytest.approx(0.3, abs=0.02)


def test_head_dropout_acts_in_training_only_and_keeps_the_checkpoint_format():
    torch.manual_seed(0)
    plain, dropped = ClassificationHead(2, 8, 2), ClassificationHead(2, 8, 2, dropout=0.5)
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())
    x = torch.rand(4, 8, 3, 3)
    dropped.eval(), plain.eval()
    assert torch.equal(dropped(x), plain(x))
    dropped.train()
    assert not torch.equal(dropped(x), plain(x))


def test_recipe_v3_balances_the_datasets_and_drops_out_in_the_head():
    parser = bundle_parser(RECIPE, {"device": "$torch.device('cpu')"})
    assert parser.get_parsed_content("epochs") == 60
    assert parser.get_parsed_content("train#dataloader#sampler#balance_datasets", instantiate=False) is True
    network = parser.get_parsed_content("network_def")
    assert network.classification_head.drop1.p == 0.3 and network.classification_head.drop2.p == 0.3
    # a released N-Unet (no head dropout) loads into it: the dropout holds no weights
    network.load_state_dict(get_network("nunet", spatial_dims=2, in_channels=3, num_classes=2).state_dict())
