"""Loading a split of a datalist for training, with every problem reported by file name."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from monai.data import load_decathlon_datalist
from PIL import Image

from custom.errors import DataError, InputError
from custom.imageio import check_mask_size, medical_format, read_frames


def load_datalist(
    path: str,
    split: str = "training",
    check_images: bool = True,
    labels: bool = True,
    classes: Sequence[str] | None = None,
    num_classes: int | None = None,
) -> list[dict]:
    """The records of ``split`` in the datalist at ``path``, with ``image``/``label`` made absolute.

    ``classes`` keeps only the records of those ``class_name`` values (ACSNet's benign-vs-malignant
    setting drops the normal images from every split); a split left empty is an InputError.

    Paths are relative to the datalist's folder (as ``scripts/prepare_data.py`` writes them), so a
    prepared folder can be moved. Before MONAI sees the records, each one is checked: the image
    and its mask exist, are not empty, can be decoded and have the same size. A problem raises
    :class:`InputError` naming the datalist, the case and the file, instead of a failure deep inside
    a data-loader worker. With ``labels`` (training, validation, evaluation) every record needs its
    mask; inference reads images only and passes False.

    The schema is checked too: the split is a non-empty list of objects, and a record's ``lesion``
    (0 or 1) and ``class`` (0 normal, 1 benign, 2 malignant) are in range; with ``num_classes`` 3
    every record needs its ``class``.
    """
    if os.path.isdir(path):
        raise InputError(f"datalist {path!r} is a folder: pass --dataset_dir {path} or --datalist {path}/fold0.json.")
    if not os.path.isfile(path):
        raise InputError(
            f"datalist {path!r} does not exist: pass --datalist <prepared dir>/fold0.json or --dataset_dir "
            "<prepared dir> (make one with scripts/prepare_data.py)."
        )
    try:
        with open(path) as f:
            content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(
            f"datalist {path!r} is not valid JSON ({e}); re-create it with scripts/prepare_data.py."
        ) from e
    if not isinstance(content, dict) or split not in content:
        keys = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise InputError(f"datalist {path!r} has no {split!r} split (it has {keys}).")
    declared = content.get("classes")
    if num_classes is not None and isinstance(declared, dict) and num_classes > len(declared):
        raise InputError(
            f"datalist {path!r} has {len(declared)} classes ({', '.join(declared)}); --num_classes {num_classes} "
            "needs normal, benign and malignant labels (scripts/prepare_data.py folder --labels <csv>)."
        )
    _check_schema(content[split], f"datalist {path!r}, {split}", num_classes)
    records = load_decathlon_datalist(path, data_list_key=split, base_dir=os.path.dirname(os.path.abspath(path)))
    if classes is not None:
        records = [r for r in records if isinstance(r, dict) and r.get("class_name") in classes]
        if not records:
            raise InputError(f"datalist {path!r}, {split}: no record of the classes {', '.join(classes)}.")
    for i, record in enumerate(records):
        case = record.get("id", f"record {i}") if isinstance(record, dict) else f"record {i}"
        if not isinstance(record, dict) or "image" not in record:
            raise InputError(f"datalist {path!r}, {split} {case}: a record needs an 'image' path.")
        if labels and "label" not in record:
            raise InputError(
                f"datalist {path!r}, {split} case {case!r}: image {record['image']!r} has no 'label' (mask path); "
                "add its mask or remove the case."
            )
        for key in ("image", "label"):
            if key in record:
                _check_file(record[key], f"datalist {path!r}, {split} case {case!r}, {key}", check_images)
        if check_images and "label" in record:
            try:
                check_mask_size(Path(record["image"]), Path(record["label"]))
            except DataError as e:
                raise InputError(f"datalist {path!r}, {split} case {case!r}: {e}") from e
    return records


def _check_schema(records: object, where: str, num_classes: int | None) -> None:
    if not isinstance(records, list):
        raise InputError(f"{where}: the split must be a list of records, not {type(records).__name__}.")
    if not records:
        raise InputError(f"{where}: the split is empty; re-create the folds with scripts/prepare_data.py.")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(
                f"{where}, record {i}: a record must be an object with 'image' (and 'label'), not {record!r:.60}."
            )
        case = record.get("id", f"record {i}")
        allowed = {"lesion": (0, 1), "class": (0, 1, 2)}
        for key, values in allowed.items():
            value = record.get(key)
            if key in record and value not in values:
                raise InputError(
                    f"{where} case {case!r}: {key!r} is {value!r}; allowed: {', '.join(map(str, values))}."
                )
        if num_classes == 3 and "class" not in record:
            raise InputError(
                f"{where} case {case!r}: no 'class' (0 normal, 1 benign, 2 malignant), which num_classes 3 needs; "
                "prepare the data with scripts/prepare_data.py."
            )


def _check_file(file: str, where: str, decode: bool) -> None:
    if not os.path.isfile(file):
        what = "mask" if where.endswith("label") else "image"
        raise InputError(
            f"{where}: {what} file {file!r} does not exist; fix the path or re-run scripts/prepare_data.py."
        )
    if os.path.getsize(file) == 0:
        raise InputError(f"{where}: file {file!r} is empty (0 bytes); replace it or remove the case.")
    if decode and medical_format(file):
        try:
            read_frames(Path(file))
        except DataError as e:
            raise InputError(f"{where}: {e}.") from e
    elif decode:
        try:
            with Image.open(file) as img:
                img.load()
        except Exception as e:  # PIL raises several unrelated types for unreadable files
            raise InputError(f"{where}: file {file!r} is not a readable image ({e}).") from e
