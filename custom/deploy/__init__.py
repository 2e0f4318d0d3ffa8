"""Deployment of trained networks: ONNX export and the ONNX Runtime path used for CPU inference."""

from custom.deploy.ensemble import ProbabilityEnsemble, checkpoint_paths, ensemble_of
from custom.deploy.loading import bundle_parser, load_model_weights, network_from_config
from custom.deploy.onnx import MultiTaskOutputs, export_and_check, export_onnx
from custom.deploy.runtime import CPU_RUNTIMES, OnnxRuntimeNetwork, accelerate

__all__ = [
    "CPU_RUNTIMES",
    "MultiTaskOutputs",
    "OnnxRuntimeNetwork",
    "ProbabilityEnsemble",
    "accelerate",
    "bundle_parser",
    "checkpoint_paths",
    "ensemble_of",
    "export_and_check",
    "export_onnx",
    "load_model_weights",
    "network_from_config",
]
