"""MONAI dictionary transforms the configs use where MONAI has no component."""

from .gradient import GradientMagnituded
from .intensity import RandSpeckleNoised
from .labels import BinarizeMaskd, ClassLabeld, NormalizeChannelsd, class_names
from .load import LoadPictured
from .outputs import LesionMeasurementsd, MatchLabelSized, MultiTaskDecisiond, SaveMaskd, SaveResultd
from .overlay import SaveOverlayd
from .region import CropScanRegiond
from .resize import AntiAliasedResize, AntiAliasedResized

__all__ = [
    "AntiAliasedResize",
    "AntiAliasedResized",
    "BinarizeMaskd",
    "ClassLabeld",
    "CropScanRegiond",
    "GradientMagnituded",
    "LesionMeasurementsd",
    "LoadPictured",
    "MatchLabelSized",
    "MultiTaskDecisiond",
    "RandSpeckleNoised",
    "NormalizeChannelsd",
    "SaveMaskd",
    "SaveOverlayd",
    "SaveResultd",
    "class_names",
]
