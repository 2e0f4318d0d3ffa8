"""The ONNX export on the command line: a trained bundle network to ONNX, checked against PyTorch in ONNX Runtime.

The export itself is :func:`custom.deploy.onnx.export_and_check`.
"""

from __future__ import annotations

import json
from typing import Any

from custom.cli import run as run_command
from custom.deploy.onnx import DEFAULT_CONFIG, export_and_check

__all__ = ["export_onnx_command", "main"]


def export_onnx_command(
    ckpt: str, out: str, config: Any = DEFAULT_CONFIG, check_batch: int = 2, **overrides: Any
) -> None:
    """Writes ``out`` from ``ckpt`` loaded into the ``network_def`` of ``config`` (+ ``overrides``) and checks it.

    ``python scripts/export_onnx.py --ckpt bundle/models/model.pt --out bundle/models/model.onnx``; another
    network: ``--ckpt runs/acsnet/fold0/model.pt --out acsnet.onnx
    --config "['bundle/configs/train.json','bundle/configs/peer_acsnet.json']"``.

    The graph has one input ``image`` (B, C, H, W) and one output per task: ``seg`` (B, 1, H, W) lesion
    logits before CSB and ``cls`` (B, num_classes) logits; apply ``custom.networks.csb_gate`` (or the
    sigmoid and softmax) to them as ``inference.json`` does. Prints the largest difference between ONNX
    Runtime and PyTorch on a random batch. The input channels and size come from the configs
    (``--in_channels``, ``--spatial_size`` override them, like any other bundle key).
    """
    report = export_and_check(ckpt, out, config=config, check_batch=check_batch, overrides=overrides)
    print(json.dumps(report, indent=2))


def main() -> None:
    """``nunet-export-onnx`` and ``scripts/export_onnx.py``: :func:`export_onnx_command` on the command line."""
    run_command(export_onnx_command)
