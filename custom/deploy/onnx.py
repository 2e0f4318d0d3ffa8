"""ONNX export of a multi-task network: one graph with dynamic batch and spatial size, one output per task."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from custom.checkpoints import TrainedModel, card_path
from custom.configs import bundle_parser
from custom.engine import check_spatial_size, check_whole_number
from custom.fileio import atomic_file, check_not_an_input
from custom.paths import INFERENCE_CONFIG


class MultiTaskOutputs(nn.Module):
    """Returns the task outputs of ``network`` as a tuple in the order of ``tasks``.

    ONNX graphs have positional outputs; the network's ``{"seg": ..., "cls": ...}`` becomes
    ``(seg, cls)`` and the output names carry the task names back.
    """

    def __init__(self, network: nn.Module, tasks: Sequence[str]) -> None:
        super().__init__()
        self.network = network
        self.tasks = tuple(tasks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network(x)
        return tuple(out[task] for task in self.tasks)


OPSET = 18  # the ONNX opset of every export


def export_onnx(
    network: nn.Module, example: torch.Tensor, file: str | os.PathLike | None = None, opset: int = OPSET
) -> tuple[bytes | str, list[str]]:
    """Exports ``network`` (in eval mode) to ONNX with input ``image`` and one output per task.

    The batch and both spatial axes are dynamic, so one file serves any batch size and any input
    size the network accepts (N-Unet: multiples of 16). This uses the TorchScript-based exporter
    (``dynamo=False``): the torch.export-based one needs the spatial sizes declared as multiples of
    the network's stride and took about ten times longer on this network (inference exports each
    weights file once, :mod:`custom.deploy.onnx_cache`).

    Args:
        network: a registered network (forward returns a dict of task outputs).
        example: an input batch of the right channels and dtype (its values do not matter).
        file: where to write the model; ``None`` returns the serialized model as bytes.
        opset: ONNX opset version.

    Returns:
        ``(file or bytes, task names in output order)``.
    """
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            tasks = list(network(example).keys())
        target = io.BytesIO()  # written to ``file`` whole, atomically: a full disk leaves no truncated model
        axes = {"image": {0: "batch", 2: "height", 3: "width"}}
        axes.update({task: {0: "batch"} for task in tasks})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice for dynamo=False
            torch.onnx.export(
                MultiTaskOutputs(network, tasks),
                (example,),
                target,
                input_names=["image"],
                output_names=tasks,
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
    finally:
        network.train(was_training)
    if file is None:
        return target.getvalue(), tasks
    with atomic_file(file, durable=True) as f:
        f.write(target.getvalue())
    return str(file), tasks


DEFAULT_CONFIG = INFERENCE_CONFIG


def max_abs_difference(
    network: nn.Module, model: bytes | str, tasks: Sequence[str], x: torch.Tensor
) -> dict[str, float]:
    """Largest absolute difference per task between ONNX Runtime running ``model`` and ``network`` on ``x``."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        reference = network.eval()(x)
    return {task: float(np.abs(out - reference[task].numpy()).max()) for task, out in zip(tasks, outputs)}


def export_and_check(
    ckpt_path: str,
    out: str,
    config: str | Sequence[str] = DEFAULT_CONFIG,
    check_batch: int = 2,
    overrides: Mapping[str, Any] | None = None,
) -> dict:
    """Exports the checkpoint's network to ``out`` and compares ONNX Runtime with PyTorch on a random batch.

    The network, its input channels and its input size come from the bundle configs (``network_def``,
    ``in_channels``; the input size by the rule of inference, :meth:`custom.checkpoints.TrainedModel.input_size`:
    the checkpoint's own unless ``spatial_size`` is overridden, refused in one line unless the network can take
    it). The check runs a batch of ``check_batch`` at about half the height, other than the export example, so
    it also proves the dynamic axes.

    Returns:
        ``{"onnx", "checkpoint", "tasks", "check_input", "max_abs_diff": {task: difference}}``.
    """
    check_not_an_input(
        out, {"the checkpoint exported (--ckpt)": ckpt_path, "its model card": card_path(ckpt_path)}, "--out"
    )
    overrides = dict(overrides or {})
    check_whole_number("check_batch", check_batch)
    # inference.json resolves the checkpoint's trained_model; another config is given one here
    parser = bundle_parser(config, {"ckpt_path": str(ckpt_path), **overrides})
    trained = parser.get_parsed_content("trained_model") if "trained_model" in parser else TrainedModel(ckpt_path)
    network = trained.load(parser.get_parsed_content("network_def")).eval()
    channels = int(parser.get_parsed_content("in_channels"))
    spatial_size = parser.get_parsed_content("spatial_size")  # inference.json: the trained model's unless overridden
    check_spatial_size(spatial_size, network)  # a size the network cannot halve failed deep in the exporter
    height, width = trained.input_size(spatial_size)  # warns when it is not the size the weights were trained at
    _, tasks = export_onnx(network, torch.zeros(1, channels, height, width), out)
    divisor = getattr(network, "size_divisor", 1) or 1
    probe_height = max(divisor, height // 2 // divisor * divisor)  # another height the network takes
    probe = torch.rand(check_batch, channels, probe_height, width, generator=torch.Generator().manual_seed(0))
    diff = max_abs_difference(network, out, tasks, probe)
    return {
        "onnx": str(out),
        "checkpoint": str(ckpt_path),
        "tasks": tasks,
        "check_input": list(probe.shape),
        "max_abs_diff": diff,
    }
