"""Data: datalists, class weights, inference inputs (dataset readers and folds: scripts/prepare_data.py)."""

from .datalist import load_datalist
from .inputs import image_records
from .weights import class_weights

__all__ = ["class_weights", "image_records", "load_datalist"]
