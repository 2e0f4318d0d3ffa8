"""Deployment of trained networks: the release (weights and card), ONNX export and the ONNX Runtime path of CPU
inference. The trained model on disk itself (weights files, cards, ensembles of them) is :mod:`custom.checkpoints`."""

from custom.deploy.onnx import MultiTaskOutputs, export_and_check, export_onnx
from custom.deploy.onnx_cache import onnx_cache_dir
from custom.deploy.runtime import CPU_RUNTIMES, OnnxRuntimeNetwork, accelerate, inference_network

__all__ = [
    "CPU_RUNTIMES",
    "MultiTaskOutputs",
    "OnnxRuntimeNetwork",
    "accelerate",
    "export_and_check",
    "export_onnx",
    "inference_network",
    "onnx_cache_dir",
]
