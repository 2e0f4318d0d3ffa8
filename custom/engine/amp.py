"""Mixed precision on any device: the forward pass under ``torch.autocast`` of the inputs' own device.

MONAI 1.6's ``SupervisedTrainer`` and ``SupervisedEvaluator`` hard-code ``torch.autocast("cuda")``, so
their ``amp`` switch does nothing on a CPU. :class:`AutocastInferer` wraps the engines' inferer
instead: the network's forward runs in reduced precision on whatever device the batch is on, and its
outputs come back in float32 so that losses, post-processing and metrics stay in full precision
(the loss-in-fp32 practice of PyTorch's AMP recipes). On CUDA the engines' own autocast and
``GradScaler`` keep working: a second autocast context of the same device and dtype changes nothing.

bf16 autocast only pays on a CPU whose oneDNN has bf16 kernels (AVX512-BF16 or AMX). Elsewhere
PyTorch falls back to a reference convolution that was measured 20x slower than fp32 on an
AVX2-only EPYC (see ``docs/benchmarks.md``), so :func:`amp_supported` is the default of ``amp``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer

from custom.errors import InputError

__all__ = ["AutocastInferer", "amp_dtype_name", "amp_supported", "autocast_kwargs", "engine_grad_scaler"]


def amp_supported(device: str | torch.device) -> bool:
    """Whether mixed precision is fast on ``device``: any CUDA device, or a CPU with oneDNN bf16 kernels."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def amp_dtype_name(device: str | torch.device) -> str:
    """The reduced-precision dtype for ``device``: bf16 on CPUs and bf16-capable GPUs, fp16 on older GPUs.

    fp16 on a CPU has no fast kernels and, without a gradient scaler (MONAI's is CUDA-only), underflows.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "float16"
    return "bfloat16"


def engine_grad_scaler(amp: bool, dtype: str) -> bool:
    """The ``amp`` switch of MONAI's engines: on only for float16, the one dtype that needs their ``GradScaler``.

    bf16 (and fp16's forward pass too) runs under :class:`AutocastInferer` on any device.
    """
    return bool(amp) and dtype == "float16"


def autocast_kwargs(dtype: str) -> dict[str, torch.dtype]:
    """The engines' ``amp_kwargs`` for the dtype named ``dtype`` (``float16`` or ``bfloat16``)."""
    return {"dtype": torch_dtype(dtype)}


def torch_dtype(name: str) -> torch.dtype:
    """The reduced-precision ``torch.dtype`` named ``name``; :class:`InputError` naming ``--amp_dtype`` otherwise."""
    if name not in ("float16", "bfloat16"):
        raise InputError(f"--amp_dtype {name!r}: use float16 or bfloat16.")
    return getattr(torch, name)


def _to_float32(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, dict):
        return {key: _to_float32(value) for key, value in output.items()}
    if isinstance(output, (list, tuple)):
        return type(output)(_to_float32(value) for value in output)
    return output


class AutocastInferer(Inferer):
    """Runs ``inferer`` under ``torch.autocast`` on the device of ``inputs``; floating outputs return as float32.

    Args:
        inferer: the inferer to wrap (default :class:`monai.inferers.SimpleInferer`).
        enabled: run in reduced precision; ``False`` makes this a transparent wrapper.
        dtype: the autocast dtype, a ``torch.dtype`` or its name (``"bfloat16"``, ``"float16"``).
    """

    def __init__(self, inferer: Inferer | None = None, enabled: bool = True, dtype: torch.dtype | str = "bfloat16"):
        super().__init__()
        self.inferer = inferer if inferer is not None else SimpleInferer()
        self.enabled = bool(enabled)
        self.dtype = torch_dtype(dtype) if isinstance(dtype, str) else dtype

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.enabled:
            return self.inferer(inputs, network, *args, **kwargs)
        with torch.autocast(inputs.device.type, dtype=self.dtype):
            output = self.inferer(inputs, network, *args, **kwargs)
        return _to_float32(output)
