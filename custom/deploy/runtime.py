"""CPU inference through ONNX Runtime, as a drop-in module for MONAI engines and bundle configs.

:func:`inference_network` is the network ``inference.json`` runs: the trained model's weights loaded
into the config's network (one copy per file of an ensemble), each run by ONNX Runtime on the CPU
from the model exported once for its weights file (:mod:`custom.deploy.onnx_cache`), their outputs
averaged (:func:`custom.networks.ensemble`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from monai.data import MetaTensor

from custom.checkpoints import TrainedModel
from custom.errors import InputError
from custom.networks import ensemble

from .onnx_cache import cached_onnx_file, onnx_model

CPU_RUNTIMES = ("onnxruntime", "torch")

logger = logging.getLogger("nunet")


class OnnxRuntimeNetwork(nn.Module):
    """Runs ``network`` with ONNX Runtime: same input, same ``{"seg", "cls"}`` output, faster on CPU.

    The session is built at the first forward pass, from the model cached for the weights' file
    (``cache_file``, exported there the first time) or, without one, exported from the current
    weights. The wrapper is transparent for checkpoints (``state_dict``/``load_state_dict`` are the
    wrapped network's); ``load_state_dict`` discards the session and the cache file, which no longer
    describes the weights. Inference only: there is no gradient.

    Args:
        network: a registered multi-task network.
        threads: ONNX Runtime intra-op threads (``None``: its default, one per physical core).
        cache_file: where the ONNX model of these weights is cached (:func:`custom.deploy.onnx_cache.cached_onnx_file`).
    """

    def __init__(
        self, network: nn.Module, threads: int | None = None, cache_file: str | os.PathLike | None = None
    ) -> None:
        super().__init__()
        self.network = network
        self.threads = threads
        self.cache_file = Path(cache_file) if cache_file is not None else None
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
        self._session, self.cache_file = None, None
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)

    def _build_session(self, example: torch.Tensor) -> None:
        import onnxruntime as ort

        model = onnx_model(self.network, example, self.cache_file)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
        # between two images the pipeline works in Python (loading, inverting, saving) while ONNX Runtime's
        # idle threads spin on the same cores: 200 images of 32x32 took 8.8 s spinning, 7.5 s without
        # (two cores, beside a training); batch-1 256x256 inference time did not change
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._tasks = [output.name for output in self._session.get_outputs()]  # export_onnx names them by task

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


def accelerate(
    network: nn.Module, device: torch.device | str, cpu_runtime: str = "onnxruntime", weights_sha256: str | None = None
) -> nn.Module:
    """The network to run inference with: ONNX Runtime on the CPU when asked for and installed, else ``network``.

    Args:
        network: the PyTorch network (already on ``device``).
        device: the inference device; GPUs always run PyTorch.
        cpu_runtime: ``"onnxruntime"`` or ``"torch"`` (eager PyTorch).
        weights_sha256: the SHA-256 of the weights file ``network`` holds: its ONNX model is cached under it
            (:mod:`custom.deploy.onnx_cache`); None exports the weights it holds at the first forward pass.
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
    cache_file = cached_onnx_file(weights_sha256, network) if weights_sha256 is not None else None
    return OnnxRuntimeNetwork(network, cache_file=cache_file)


def inference_network(
    trained_model: TrainedModel, network: nn.Module, device: torch.device | str, cpu_runtime: str = "onnxruntime"
) -> nn.Module:
    """``network`` (on ``device``) with the weights of ``trained_model``: one copy per weights file, each through
    :func:`accelerate` with the file's SHA-256, several averaged (:func:`custom.networks.ensemble`)."""
    members = trained_model.members(network)
    return ensemble([accelerate(m, device, cpu_runtime, sha) for m, sha in zip(members, trained_model.sha256)])
