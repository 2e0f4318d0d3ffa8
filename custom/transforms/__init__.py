"""MONAI dictionary transforms the configs use where MONAI has no component."""

from .gradient import GradientMagnituded
from .labels import BinarizeMaskd, ClassLabeld, NormalizeChannelsd, class_names
from .outputs import MatchLabelSized, MultiTaskDecisiond, SaveResultd

__all__ = [
    "BinarizeMaskd",
    "ClassLabeld",
    "GradientMagnituded",
    "MatchLabelSized",
    "MultiTaskDecisiond",
    "NormalizeChannelsd",
    "SaveResultd",
    "class_names",
]
