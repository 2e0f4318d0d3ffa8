"""CPU inference through ONNX Runtime, as a drop-in module for MONAI engines and bundle configs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
from monai.data import MetaTensor

from custom.deploy.onnx import export_onnx
from custom.errors import InputError

CPU_RUNTIMES = ("onnxruntime", "torch")

logger = logging.getLogger("nunet")


class OnnxRuntimeNetwork(nn.Module):
    """Runs ``network`` with ONNX Runtime: same input, same ``{"seg", "cls"}`` output, faster on CPU.

    The wrapper is transparent for checkpoints (``state_dict``/``load_state_dict`` are the wrapped
    network's, so ``CheckpointLoader`` loads into it as into the network) and exports the current
    weights on the first forward pass, so the ONNX graph always matches the loaded checkpoint. A
    later ``load_state_dict`` discards the session. Inference only: there is no gradient.

    Args:
        network: a registered multi-task network.
        threads: ONNX Runtime intra-op threads (``None``: its default, one per physical core).
    """

    def __init__(self, network: nn.Module, threads: int | None = None) -> None:
        super().__init__()
        self.network = network
        self.threads = threads
        self._session: Any = None
        self._tasks: list[str] = []

    def train(self, mode: bool = True) -> OnnxRuntimeNetwork:
        # the graph runs in eval mode whatever this flag says (export_onnx exports in eval mode), so the
        # evaluator's eval()/train() around every iteration need not walk the wrapped network's
        # hundreds of modules: 15 % of the time of a 32x32 image
        self.training = mode
        return self

    def state_dict(self, *args, **kwargs) -> dict[str, Any]:
        return self.network.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        self._session = None
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)

    def _build_session(self, example: torch.Tensor) -> None:
        import onnxruntime as ort

        model, self._tasks = export_onnx(self.network, example)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
        # between two images the pipeline works in Python (loading, inverting, saving) while ONNX Runtime's
        # idle threads spin on the same cores: 200 images of 32x32 took 8.8 s spinning, 7.5 s without
        # (two cores, beside a training); batch-1 256x256 inference time did not change
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        image = x.as_tensor() if isinstance(x, MetaTensor) else x
        image = image.detach().to("cpu", torch.float32).contiguous()
        if self._session is None:
            self._build_session(image)
        arrays = self._session.run(None, {"image": image.numpy()})
        outputs = {task: torch.from_numpy(out) for task, out in zip(self._tasks, arrays)}
        if isinstance(x, MetaTensor):
            # as eager PyTorch does: MONAI's ops pass the input's metadata (file names, applied transforms)
            # on to every output, and inversion and saving read it from there
            outputs = {task: _with_meta_of(out, x) for task, out in outputs.items()}
        return outputs


def _with_meta_of(tensor: torch.Tensor, source: MetaTensor) -> MetaTensor:
    out = MetaTensor(tensor)
    out.copy_meta_from(source)
    return out


def accelerate(network: nn.Module, device: torch.device | str, cpu_runtime: str = "onnxruntime") -> nn.Module:
    """The network to run inference with: ONNX Runtime on the CPU when asked for and installed, else ``network``.

    Args:
        network: the PyTorch network (already on ``device``).
        device: the inference device; GPUs always run PyTorch.
        cpu_runtime: ``"onnxruntime"`` or ``"torch"`` (eager PyTorch).
    """
    if cpu_runtime not in CPU_RUNTIMES:
        raise InputError(f"--cpu_runtime {cpu_runtime!r}: use one of {', '.join(CPU_RUNTIMES)}.")
    if torch.device(device).type != "cpu" or cpu_runtime == "torch":
        return network
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.warning("onnxruntime is not installed: CPU inference runs in eager PyTorch (pip install onnxruntime).")
        return network
    return OnnxRuntimeNetwork(network)
