"""Losses: the AMTL multi-task loss of N-Unet and its task terms."""

from .amtl import AMTLLoss
from .focal import FocalCrossEntropyLoss

__all__ = ["AMTLLoss", "FocalCrossEntropyLoss"]
