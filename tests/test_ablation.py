"""The ablation variants (custom/workflows/ablation.py, scripts/ablate.py): what each one trains, and the driver end to end."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CONFIGS, TINY_RUN, run_script
from monai.bundle import ConfigParser

from custom.workflows.ablation import table7, table8, variants


def _parsed(overrides: dict, *keys: str, tmp_path=None):
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({"spatial_size": [32, 32], "class_weights": [1.0, 1.0], **overrides})
    return [parser.get_parsed_content(k) for k in keys]


def test_table7_is_the_full_grid_and_table8_the_single_task_variants():
    grid = table7()
    assert len(grid) == 16 and list(grid)[0] == "Unet" and list(grid)[-1] == "A+C+AF+CL"
    assert {"N-Unet-Cls", "N-Unet-Seg"} == set(table8()) and len(variants()) == 18


def test_without_amtl_is_cross_entropy_plus_dice_with_fixed_equal_weights():
    (loss,) = _parsed(variants(["Unet"])["Unet"], "loss")
    assert loss.learn_weights is False and loss.task_weights() == {"cls": 1.0, "seg": 1.0}
    focal = loss.task_losses["cls"]
    logits, target = torch.randn(8, 2), torch.randint(0, 2, (8,))
    assert focal(logits, target).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, target).item(), rel=1e-5
    )
    (amtl,) = _parsed(variants(["A"])["A"], "loss")
    assert amtl.learn_weights is True and amtl.task_losses["cls"].focal.gamma == 2.0


def test_module_switches_reach_the_network():
    sizes = {}
    for name in ("Unet", "AF", "CL", "A+C+AF+CL", "N-Unet-Seg", "N-Unet-Cls"):
        network, csb_mode = _parsed(variants([name])[name], "network_def", "csb_mode")
        sizes[name] = sum(p.numel() for p in network.parameters())
        assert csb_mode == ("hard" if "C" in name.split("+") or name.startswith("N-Unet") else "off")
    assert sizes["Unet"] < sizes["AF"] < sizes["A+C+AF+CL"] and sizes["Unet"] < sizes["CL"] < sizes["A+C+AF+CL"]
    assert sizes["N-Unet-Seg"] < sizes["A+C+AF+CL"] and sizes["N-Unet-Cls"] < sizes["N-Unet-Seg"]


@pytest.mark.slow
def test_ablation_driver_on_the_demo_data(demo_dir, tmp_path, bundle_runs_in_process):
    proc = run_script(
        "ablate.py",
        "--data",
        str(demo_dir),
        "--out",
        str(tmp_path),
        "--folds",
        "0",
        "--variants",
        "Unet,N-Unet-Seg",
        "--epochs",
        "1",
        *TINY_RUN,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "ablation.json").read_text())
    assert list(result["variants"]) == ["Unet", "N-Unet-Seg"]
    assert result["variants"]["N-Unet-Seg"]["classification/accuracy"] is None  # no classification head
    assert result["variants"]["Unet"]["segmentation/dice"][0] >= 0
    table = (tmp_path / "ablation.md").read_text()
    assert "| Unet |" in table and "| N-Unet-Seg | n/a | n/a |" in table and "hd95" in table
    run = json.loads((tmp_path / "Unet" / "run.json").read_text())
    assert run["overrides"]["loss#learn_weights"] is False
