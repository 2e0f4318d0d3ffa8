"""Where training runs and which speed settings its device gets, decided in one place for every config.

``train.json`` asks three questions of the device: which one (:func:`default_device`, the local rank's
GPU under ``torchrun``), whether its GPU speed settings apply (:func:`gpu_profile`: channels-last
tensors, cuDNN autotuning, the fused Adam kernel, pinned host memory; each off on a CPU, where they
cost time or do not exist), and mixed precision (:mod:`custom.engine.amp`). A user overrides the whole
profile with ``--gpu_profile false`` or one setting by its own key.
"""

from __future__ import annotations

import os

import torch

__all__ = ["default_device", "distributed", "gpu_profile", "memory_format", "set_cudnn_benchmark"]


def default_device() -> torch.device:
    """The GPU of this process (``cuda:$LOCAL_RANK`` under ``torchrun``, else ``cuda:0``), or the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def gpu_profile(device: str | torch.device) -> bool:
    """Whether the GPU speed settings are the defaults: True on a CUDA device."""
    return torch.device(device).type == "cuda"


def memory_format(channels_last: bool) -> torch.memory_format:
    """``torch.channels_last`` when asked for, else the tensors' own layout."""
    return torch.channels_last if channels_last else torch.preserve_format


def set_cudnn_benchmark(enabled: bool) -> bool:
    """Lets cuDNN time its convolution algorithms once per input shape (fixed shapes: faster); returns ``enabled``.

    Listed in ``initialize`` after ``set_determinism``, which switches autotuning off.
    """
    torch.backends.cudnn.benchmark = bool(enabled)
    return bool(enabled)


def distributed(module: torch.nn.Module, device_ids: list | None = None) -> torch.nn.Module:
    """``module`` in ``DistributedDataParallel`` when it has trainable parameters, else ``module`` itself.

    ``multi_gpu_train.json`` wraps the network and the loss: N-Unet's AMTL loss learns its task weights,
    but most peers' losses have no parameters, and DDP refuses a module without any.
    """
    if not any(p.requires_grad for p in module.parameters()):
        return module
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
