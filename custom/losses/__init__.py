"""Losses: the AMTL multi-task loss of N-Unet and its task terms, and the peers' own losses."""

from .acsnet_loss import ACSNetLoss
from .amtl import AMTLLoss
from .deep_supervision import DeepSupervisionDiceFocalLoss, InverseDepthDeepSupervisionLoss
from .focal import FocalCrossEntropyLoss
from .mtl_oca_loss import MTLOCALoss

__all__ = [
    "ACSNetLoss",
    "AMTLLoss",
    "DeepSupervisionDiceFocalLoss",
    "FocalCrossEntropyLoss",
    "InverseDepthDeepSupervisionLoss",
    "MTLOCALoss",
]
