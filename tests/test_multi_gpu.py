"""``multi_gpu_train.json`` under ``torchrun`` on CPU (2 processes, gloo), against the same training in one process.

Both runs see the same images in the same order: random augmentation and dropout are switched off
and the training split is cut to 24 images, a multiple of 2 ranks x 2 images, so ``DistributedSampler``
pads nothing and step k of the two ranks together covers the 4 images of the single run's step k.
Each process saves its network and AMTL parameters before and after training (``snapshot`` below)
to ``dump_dir``; every rank gets its own ``output_dir``, so anything rank 1 wrote would show up there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, REPO, run_bundle

pytestmark = pytest.mark.slow

N_TRAIN = 24  # 2 ranks x batch 2 divides it: no padded duplicate sample in DistributedSampler
SNAPSHOT = (
    "$lambda: {'network': {k: v.detach().clone() for k, v in getattr(@network, 'module', @network).state_dict().items()}, "
    "'log_vars': {k: v.detach().clone() for k, v in getattr(@loss_fn, 'module', @loss_fn).log_vars.items()}}"
)
COMMON = {
    "augmentation": [],
    "network_def#dropout": 0.0,
    "train#dataloader#shuffle": False,
    "snapshot": SNAPSHOT,
    "run": [
        "$torch.save(@snapshot(), @dump_dir + '/init_' + @run_tag + '.pt')",
        "$@train#trainer.run()",
        "$torch.save(@snapshot(), @dump_dir + '/final_' + @run_tag + '.pt')",
    ],
    "training": "%run",
}
DDP = {
    "run_tag": "$'rank' + str(dist.get_rank())",
    "output_dir": "$@dump_dir + '/out_rank' + str(dist.get_rank())",
    "train#sampler#shuffle": False,
}


@pytest.fixture(scope="module")
def runs(demo_dir, tmp_path_factory) -> Path:
    """One epoch with torchrun (2 x batch 2) and one in a single process (batch 4); returns the dump folder."""
    root = tmp_path_factory.mktemp("ddp")
    fold = json.loads((demo_dir / "fold0.json").read_text())
    absolute = [
        {**r, "image": str(demo_dir / r["image"]), "label": str(demo_dir / r["label"])} for r in fold["training"]
    ]
    validation = [
        {**r, "image": str(demo_dir / r["image"]), "label": str(demo_dir / r["label"])} for r in fold["validation"]
    ]
    (root / "datalist.json").write_text(json.dumps({"training": absolute[:N_TRAIN], "validation": validation}))
    (root / "common.json").write_text(json.dumps(COMMON))
    (root / "ddp.json").write_text(json.dumps(DDP))
    args = [
        "--epochs",
        "1",
        "--datalist",
        str(root / "datalist.json"),
        "--spatial_size",
        "[32,32]",
        "--num_workers",
        "0",
        "--dump_dir",
        str(root),
    ]
    configs = [CONFIGS / "train.json", CONFIGS / "multi_gpu_train.json", root / "common.json", root / "ddp.json"]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        str([str(c) for c in configs]),
        *args,
        "--batch_size",
        "2",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run_bundle(
        "training",
        "--config_file",
        str([str(CONFIGS / "train.json"), str(root / "common.json")]),
        *args,
        "--batch_size",
        "4",
        "--run_tag",
        "single",
        "--output_dir",
        str(root / "out_single"),
    )
    return root


def _load(root: Path, name: str) -> dict:
    return torch.load(root / f"{name}.pt", weights_only=True)


def _weights(state: dict) -> dict[str, torch.Tensor]:
    """Trainable tensors of a network state dict (batch-norm running statistics are buffers: rank 0's are broadcast)."""
    return {k: v.float() for k, v in state.items() if "running_" not in k and "num_batches_tracked" not in k}


def _update(root: Path, run: str) -> torch.Tensor:
    start, end = _weights(_load(root, f"init_{run}")["network"]), _weights(_load(root, f"final_{run}")["network"])
    return torch.cat([(end[k] - start[k]).flatten() for k in start])


def test_both_ranks_finish_and_only_rank_0_writes(runs):
    assert {"final_rank0.pt", "final_rank1.pt"} <= {p.name for p in runs.iterdir()}
    rank0 = runs / "out_rank0"
    assert (rank0 / "model.pt").is_file() and (rank0 / "checkpoint_epoch=1.pt").is_file()
    assert len((rank0 / "train_log.jsonl").read_text().splitlines()) == 1
    assert list((rank0 / "tensorboard").glob("events.out.tfevents.*"))
    assert not [p for p in (runs / "out_rank1").rglob("*") if p.is_file()]


def test_ranks_hold_identical_network_and_amtl_parameters_and_rank_0_saves_them(runs):
    rank0, rank1 = _load(runs, "final_rank0"), _load(runs, "final_rank1")
    assert all(torch.equal(rank0["network"][k], rank1["network"][k]) for k in rank0["network"])
    assert rank0["log_vars"].keys() == {"seg", "cls"}
    for task, s in rank0["log_vars"].items():
        assert torch.equal(s, rank1["log_vars"][task])
        assert s != 0  # trained away from the initial 0, so equality is not that of two untouched copies
    # one epoch: the best checkpoint is the final network; the training checkpoint holds the unwrapped AMTL loss
    best = torch.load(runs / "out_rank0" / "model.pt", weights_only=True)
    assert all(torch.equal(best[k], rank0["network"][k]) for k in best)
    saved_loss = torch.load(runs / "out_rank0" / "checkpoint_epoch=1.pt", weights_only=True)["loss"]
    assert all(torch.equal(saved_loss[f"log_vars.{k}"], s) for k, s in rank0["log_vars"].items())


def test_result_matches_single_process_training_with_the_same_total_batch(runs):
    """Same seed and initial weights, same 4 images per optimiser step, 6 steps.

    The runs are not equal element by element: each rank normalises its batch-norm layers and pools
    its batch Dice over its own 2 images where the single run uses 4, so the gradients differ, and
    Adam at lr 1e-5 turns any change of a gradient's sign into an opposite step (measured: the two
    weight updates have cosine similarity 0.16). What must agree is what Adam makes independent of
    the gradients' exact values: its steps have size about lr per element whatever the gradient, so
    with the same number of steps over the same images the update of the network has the same norm
    (5 % allowed; a rank iterating over the whole split would double it), and each AMTL ``s_i``, whose
    gradient ``(1 - exp(-s_i) L_i) / 2D`` has the same sign in both runs while ``L_i < 1``, moves by
    the same amount (1 % of its displacement allowed). The validation loss, computed over the whole
    validation split on both (all-reduced under DDP), then agrees to 1 %.
    """
    initial_s = _load(runs, "init_single")["log_vars"]
    assert all(torch.equal(initial_s[k], _load(runs, "init_rank0")["log_vars"][k]) for k in initial_s)
    start_single, start_ddp = _load(runs, "init_single")["network"], _load(runs, "init_rank0")["network"]
    assert all(torch.equal(start_single[k], start_ddp[k]) for k in start_single)

    ddp, single = _update(runs, "rank0"), _update(runs, "single")
    assert ddp.norm() / single.norm() == pytest.approx(1.0, abs=0.05)

    s_ddp, s_single = _load(runs, "final_rank0")["log_vars"], _load(runs, "final_single")["log_vars"]
    for task in s_single:
        moved = abs(float(s_single[task] - initial_s[task]))
        assert abs(float(s_ddp[task] - s_single[task])) <= 0.01 * moved

    def val_loss(run: str) -> float:
        return json.loads((runs / run / "train_log.jsonl").read_text().splitlines()[-1])["val_loss"]

    assert val_loss("out_rank0") == pytest.approx(val_loss("out_single"), rel=0.01)
