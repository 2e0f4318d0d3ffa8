"""Every registered network and every peer config: output contract, loss that learns, bundle training, model_stats.

The checks are parametrized over ``custom.networks.NETWORKS`` and ``bundle/configs/peer_*.json``, so
a new peer is covered as soon as it is registered. A registered network whose module is not written
yet is skipped (by name of the missing module), and only then: a module that exists but fails to
import fails its tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, run_bundle, run_script
from monai.bundle import ConfigParser
from PIL import Image

from custom.networks import NETWORKS, get_network
from custom.networks.baselines import BottleneckClassifier
from custom.networks.stats import INPUT_SHAPES, count_parameters

pytestmark = [
    # known deprecations of the tools under test (tracing is how the hooked baselines export)
    pytest.mark.filterwarnings("ignore:`torch.jit.(script|interface|trace|trace_method)` is deprecated"),
    pytest.mark.filterwarnings("ignore:distutils Version classes are deprecated"),  # thop
    # SwinUNETR's window padding depends on the input size: traced graphs hold for that size only
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]

PEER_CONFIGS = sorted(CONFIGS.glob("peer_*.json"))
# a peer that is another's recipe on a different network is merged after that peer (as the README says)
BASES: dict[str, list[str]] = {"peer_multitask_unet": ["peer_aumente_maestro"]}
BASELINES = ("unet", "attention_unet", "unetr", "swin_unetr")
SIZE = 64  # test input size: divisible by 32 (SwinUNETR) and by UNETR's 16-pixel patches
# narrow widths where the network's defaults are slow on CPU; other networks are built with their defaults
SMALL: dict[str, dict] = {
    "nunet": {"features": (8, 16, 32, 64, 128)},
    "unet": {"channels": (8, 16, 32, 64, 128)},
    "attention_unet": {"channels": (8, 16, 32, 64, 128)},
    "unetr": {"feature_size": 8, "hidden_size": 48, "mlp_dim": 96, "num_heads": 4},
    "swin_unetr": {"feature_size": 12},
    "mt_unetpp": {"features": (8, 16, 32, 64, 128, 8)},
    "mtl_oca": {"features": (8, 16, 32, 64), "cls_hidden": 16},
    "acsnet": {"decoder_channels": (32, 32, 16, 16)},  # its ResNet-34 encoder keeps its width
}
# what a network needs to know about the input size (peer configs derive it from spatial_size)
SIZED: dict[str, dict] = {"unetr": {"img_size": SIZE}}


def _small(name: str, num_classes: int = 2) -> torch.nn.Module:
    """Network ``name`` at its own input channels, with the SMALL widths and the SIZED input size."""
    return get_network(
        name, in_channels=INPUT_SHAPES[name][1], num_classes=num_classes, **SMALL.get(name, {}), **SIZED.get(name, {})
    )


# ---------------------------------------------------------------- every registered network
def test_every_network_has_an_input_shape():
    assert set(INPUT_SHAPES) == set(NETWORKS)


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_output_contract(name, num_classes):
    torch.manual_seed(0)
    net = _small(name, num_classes)
    x = torch.randn(2, INPUT_SHAPES[name][1], SIZE, SIZE)
    with torch.no_grad():
        train_out = net.train()(x)
        eval_out = net.eval()(x)
    assert {"seg", "cls"} <= set(train_out) <= {"seg", "cls", "aux_seg"}
    for aux in train_out.get("aux_seg", []):
        assert aux.ndim == 4 and aux.shape[0] == 2
    assert set(eval_out) == {"seg", "cls"}
    for out in (train_out, eval_out):
        assert out["seg"].shape == (2, 1, SIZE, SIZE)
        assert out["cls"].shape == (2, num_classes)
        assert torch.isfinite(out["seg"]).all() and torch.isfinite(out["cls"]).all()


# ---------------------------------------------------------------- the MONAI baselines with a classification head
# bottleneck feature map of a 64x64 input with SMALL settings: 128@4x4 (U-Nets), 48@4x4 (UNETR patches of 16), 192@2x2 (Swin)
BOTTLENECK_SHAPES = {"unet": (128, 4, 4), "attention_unet": (128, 4, 4), "unetr": (48, 4, 4), "swin_unetr": (192, 2, 2)}


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_head_reads_the_bottleneck_and_leaves_segmentation_alone(name):
    torch.manual_seed(0)
    net = _small(name, num_classes=3).eval()
    assert isinstance(net, BottleneckClassifier)
    bottleneck = net.segmenter.get_submodule(net.bottleneck)
    seen = []
    probe = bottleneck.register_forward_hook(lambda _m, _a, output: seen.append(net.bottleneck_features(output)))
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        out = net(x)
        probe.remove()
        assert tuple(seen[0].shape) == (2, *BOTTLENECK_SHAPES[name])
        torch.testing.assert_close(out["cls"], net.classification_head(net.bottleneck_norm(seen[0])))
        torch.testing.assert_close(out["seg"], net.segmenter(x))
    assert not bottleneck._forward_hooks  # the capture hook lives only during forward


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_head_sees_a_normalised_bottleneck_whatever_its_scale(name):
    """The U-Net baseline's head died on large unnormalised bottleneck activations (docs/training.md)."""
    torch.manual_seed(0)
    net = _small(name).train()
    head_inputs = []
    net.classification_head.register_forward_pre_hook(lambda _m, args: head_inputs.append(args[0]))
    with torch.no_grad():
        net(50 * torch.randn(4, 3, SIZE, SIZE))
    channels = head_inputs[0].transpose(0, 1).flatten(1)
    torch.testing.assert_close(channels.mean(1), torch.zeros(len(channels)), atol=1e-4, rtol=0)
    torch.testing.assert_close(channels.var(1, unbiased=False), torch.ones(len(channels)), atol=1e-2, rtol=0)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_traces_and_matches_eager(name):
    net = _small(name).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    traced = torch.jit.trace(net, x, strict=False, check_trace=False)  # compared below
    with torch.no_grad():
        eager, trace = net(x), traced(x)
    assert set(trace) == {"seg", "cls"}
    for key in eager:
        torch.testing.assert_close(trace[key], eager[key])


@pytest.mark.parametrize("name", ["unet", "attention_unet"])
def test_baseline_3d(name):
    net = get_network(name, spatial_dims=3, in_channels=1, channels=(4, 8, 16), strides=(2, 2)).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 1, 16, 16, 16))
    assert out["seg"].shape == (1, 1, 16, 16, 16) and out["cls"].shape == (1, 2)


# parameter counts at the defaults documented in custom/networks/baselines.py (THOP MACs: model_stats --all)
@pytest.mark.parametrize(
    "name, params_m", [("unet", 27.03), ("attention_unet", 32.79), ("unetr", 88.52), ("swin_unetr", 25.93)]
)
def test_baseline_default_sizes(name, params_m):
    assert count_parameters(get_network(name)) / 1e6 == pytest.approx(params_m, abs=0.005)


def test_baseline_rejects_a_single_class():
    with pytest.raises(ValueError, match="num_classes"):
        get_network("unet", num_classes=1)


# ---------------------------------------------------------------- every peer config over train.json
def peer_stack(config: Path) -> list[Path]:
    """The peer configs merged, in order, after ``train.json`` or ``inference.json`` to run ``config``."""
    return [CONFIGS / f"{base}.json" for base in BASES.get(config.stem, [])] + [config]


def _config_list(first: str, config: Path) -> str:
    return "[" + ",".join(f"'{p}'" for p in [CONFIGS / first, *peer_stack(config)]) + "]"


def _peer_parser(config, demo_dir, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), *map(str, peer_stack(config))])
    parser.update({"dataset_dir": str(demo_dir), "spatial_size": [SIZE, SIZE], **overrides})
    return parser


def _config_network(config: Path) -> str | None:
    """The registered network name the peer's configs give ``network_def`` (``None`` when it builds none by name)."""
    name = None
    for part in peer_stack(config):
        content = json.loads(part.read_text())
        name = content.get("network_def#name", content.get("network_def", {}).get("name", name))
    return name


# a config whose network has no narrow setting in SMALL learns at full width: over 20 s on a CPU
LEARNING_CASES = [
    pytest.param(config, id=config.stem, marks=() if _config_network(config) in SMALL else pytest.mark.slow)
    for config in PEER_CONFIGS
]


def test_baseline_configs_exist():
    assert {c.stem.removeprefix("peer_") for c in PEER_CONFIGS} >= set(BASELINES)


@pytest.mark.parametrize("config", LEARNING_CASES)
def test_peer_config_loss_learns_on_a_fixed_batch(config, demo_dir):
    """The config's network, loss and Adam optimizer lower the loss on one tiny batch; the loss also takes eval outputs."""
    name = _config_network(config)
    torch.manual_seed(0)
    # the config's own network at narrow widths (CPU time); its size arguments such as img_size stay as configured
    narrow = {f"network_def#{key}": value for key, value in SMALL.get(name, {}).items()}
    parser = _peer_parser(config, demo_dir, learning_rate=1e-4, **narrow)
    device = parser.get_parsed_content("device")
    net, loss_fn, optimizer = (parser.get_parsed_content(key) for key in ("network", "loss_fn", "optimizer"))
    num_classes = parser.get_parsed_content("num_classes")
    image = torch.rand(2, parser.get_parsed_content("in_channels"), SIZE, SIZE, device=device)
    mask = torch.zeros(2, 1, SIZE, SIZE, device=device)
    mask[0, :, 16:40, 20:44] = 1.0
    image[0, :, 16:40, 20:44] += 1.0  # a bright lesion in image 0, image 1 is normal
    target = {"seg": mask, "cls": torch.tensor([num_classes - 1, 0], device=device)}

    net.train()
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = loss_fn(net(image), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = float(loss_fn(net(image), target))
        eval_loss = loss_fn(net.eval()(image), target)  # validation's val_loss: outputs without aux keys
    assert final < losses[0], losses + [final]
    assert eval_loss.ndim == 0 and torch.isfinite(eval_loss)


@pytest.mark.slow
@pytest.mark.parametrize("config", PEER_CONFIGS, ids=lambda p: p.stem)
def test_peer_config_trains_through_the_bundle_and_infers_on_new_images(config, demo_dir, tmp_path):
    """``train.json`` + the peer trains one epoch; ``inference.json`` + the same peer runs its weights on a folder."""
    # at reduced width (SMALL): the wiring is the point here; full widths are checked by the parameter counts
    narrow = [
        a for k, v in SMALL.get(_config_network(config), {}).items() for a in (f"--network_def#{k}", json.dumps(v))
    ]
    size = ["--spatial_size", f"[{SIZE},{SIZE}]"]
    run_bundle(
        "training", "--config_file", _config_list("train.json", config),
        "--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path / "train"),
        *size, "--batch_size", "2", "--num_workers", "0", "--epochs", "1", *narrow,
    )  # fmt: skip
    images = sorted((demo_dir / "images").iterdir())[:3]
    new_images = tmp_path / "new"
    new_images.mkdir()
    for image in images:
        (new_images / image.name).write_bytes(image.read_bytes())
    run_bundle(
        "--config_file", _config_list("inference.json", config), "--ckpt_path", str(tmp_path / "train" / "model.pt"),
        "--input_dir", str(new_images), "--output_dir", str(tmp_path / "pred"), *size, *narrow,
    )  # fmt: skip
    for image in images:
        result = json.loads((tmp_path / "pred" / f"{image.stem}.json").read_text())
        assert 0.0 <= result["lesion_probability"] <= 1.0
        with Image.open(tmp_path / "pred" / f"{image.stem}_seg.png") as mask, Image.open(image) as source:
            assert mask.size == source.size  # back at the input's own size


# ---------------------------------------------------------------- scripts/model_stats.py --all
@pytest.mark.slow
def test_model_stats_all_lists_every_network():
    proc = run_script("model_stats.py", "--all")
    assert proc.returncode == 0, proc.stderr[-4000:]
    stats = json.loads(proc.stdout)["networks"]
    assert list(stats) == list(NETWORKS)
    for name, row in stats.items():
        assert row["input_shape"] == list(INPUT_SHAPES[name])
        assert row["params"] > 0 and row["macs"] > 0


def test_mtl_oca_keeps_its_papers_constant_learning_rate(demo_dir):
    parser = _peer_parser(CONFIGS / "peer_mtl_oca.json", demo_dir, epochs=4)
    scheduler, optimizer = parser.get_parsed_content("lr_scheduler"), parser.get_parsed_content("optimizer")
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_benign_malignant_recipe_removes_the_normal_images_from_every_split(demo_dir):
    parser = ConfigParser()
    parser.read_config(
        [str(CONFIGS / "train.json"), str(CONFIGS / "peer_acsnet.json"), str(CONFIGS / "recipe_benign_malignant.json")]
    )
    parser.update({"dataset_dir": str(demo_dir), "spatial_size": [SIZE, SIZE]})
    for key in ("train#dataset#data", "validate#dataset#data"):
        records = parser.get_parsed_content(key)
        assert records and {r["class_name"] for r in records} <= {"benign", "malignant"}
    assert parser.get_parsed_content("num_classes") == 3


# ---------------------------------------------------------------- peers under multi_gpu_train.json
def _merged(*configs: Path) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(c) for c in configs])
    return parser


@pytest.mark.parametrize("config", PEER_CONFIGS, ids=lambda p: p.stem)
def test_multi_gpu_training_keeps_every_peer_setting(config):
    """Merged after a peer, ``multi_gpu_train.json`` replaces none of the keys the peer sets."""
    single = _merged(CONFIGS / "train.json", *peer_stack(config))
    multi = _merged(CONFIGS / "train.json", *peer_stack(config), CONFIGS / "multi_gpu_train.json")
    for part in peer_stack(config):
        for key in json.loads(part.read_text()):
            if not key.startswith("_"):
                assert multi.get(key) == single.get(key), f"{config.name} + multi_gpu_train.json drops {key}"


def test_plateau_peer_keeps_its_schedule_and_stopping_under_ddp(demo_dir, monkeypatch, tmp_path):
    """Aumente-Maestro et al. under ``multi_gpu_train.json`` (one gloo process) builds its trainer with the
    peer's network, its ``ReduceLROnPlateau`` stepped on the validation loss and its early stopping."""
    import socket

    import torch.distributed as dist

    from custom.engine import EarlyStopping, LrSchedule

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOCAL_RANK", "0")
    parser = _merged(CONFIGS / "train.json", CONFIGS / "peer_aumente_maestro.json", CONFIGS / "multi_gpu_train.json")
    parser.update(
        {"dataset_dir": str(demo_dir), "output_dir": str(tmp_path), "spatial_size": [SIZE, SIZE], "num_workers": 0}
        | {"cache_rate": 0.0}
        | {f"network_def#{k}": list(v) for k, v in SMALL["mt_unetpp"].items()}
    )
    try:
        parser.get_parsed_content("initialize")
        trainer = parser.get_parsed_content("train#trainer")
        handlers = parser.get_parsed_content("train#handlers")
        schedule = next(h for h in handlers if isinstance(h, LrSchedule))
        stopping = next(h for h in handlers if isinstance(h, EarlyStopping))
        assert isinstance(schedule.lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        assert schedule.metric == "val_loss" and stopping.patience == 50
        assert isinstance(trainer.network, torch.nn.parallel.DistributedDataParallel)
        assert type(trainer.network.module).__name__ == "MTUNetPlusPlus"
    finally:  # leave this worker process serial for the tests after this one, for ignite as for torch
        import ignite.distributed as idist

        idist.finalize()
        if dist.is_initialized():
            dist.destroy_process_group()
        idist.sync()
