"""Serving the bundle with MONAI Label (``monailabel`` 0.8.5): the app folder and the server command.

:func:`create_app` lays out MONAI Label's ``monaibundle`` app shape::

    <app>/main.py                    the app (custom/resources/monailabel_main.py): local bundles only, so it starts offline
    <app>/model/<name>/configs/      this bundle's configs, incl. monailabel_infer.json (MONAI Label postprocessing)
    <app>/model/<name>/custom/       the package the configs reference, so the app runs without this repository
    <app>/model/<name>/docs/, LICENSE
    <app>/model/<name>/models/model.pt   trained weights; MONAI Label offers inference only when they exist
    <app>/produced_by.json

:func:`server_command` is the ``monailabel start_server`` command line for it, :func:`start_server` runs it.
This module never imports ``monailabel`` (the CLI ``scripts/monailabel.py`` would shadow it), so laying out
an app works without it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

from custom.checkpoints import card_path, read_card, stored_card, write_card
from custom.cli import run as run_command
from custom.fileio import atomic_write_json, atomic_write_text
from custom.paths import BUNDLE_DIR, REPO_ROOT
from custom.provenance import file_sha256, provenance

PACKAGE = REPO_ROOT / "custom"
BUNDLE = BUNDLE_DIR
APP_MAIN = PACKAGE / "resources" / "monailabel_main.py"
SERVER_MAIN = PACKAGE / "resources" / "monailabel_start.py"
DEFAULT_NAME = "nunet_breast_ultrasound"
# the configs a MONAI Label server reads: BundleInferTask (+ our override) and BundleTrainTask
SERVED_CONFIGS = ("inference.json", "train.json")
INSTALL_HINT = (
    "monailabel is not installed: 'pip install --no-deps monailabel==0.8.5 pydicom-seg==0.4.1' plus the server "
    "requirements listed in bundle/docs/README.md, section MONAI Label (its own pins would replace torch and numpy)"
)
NO_MODEL = (
    "note: {bundle} has no models/model.pt, so the server offers training only; train from the viewer "
    "(or pass --model), then restart the server to run inference."
)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.tmp*")


def create_app(
    out: str | os.PathLike,
    name: str = DEFAULT_NAME,
    model: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    bundle_dir: str | os.PathLike = BUNDLE,
) -> Path:
    """Writes a MONAI Label app serving the bundle at ``bundle_dir`` as model ``name``; returns the bundle copy.

    Args:
        out: app folder (created; other apps' files in it are left alone).
        name: model name in MONAI Label (``/infer/<name>``, ``/train/<name>``) and folder under ``model/``.
        model: weights to serve; default ``<bundle_dir>/models/model.pt`` when it exists. Without
            weights the app offers training only, until the server is restarted after a training.
        overrides: top-level or ``#``-nested config keys (e.g. ``{"spatial_size": [128, 128]}``)
            written into each served config that has the key (``inference.json``, ``train.json``).
        overwrite: replace an existing ``model/<name>`` (including weights trained in the app).
        bundle_dir: the bundle to copy (configs/, docs/; LICENSE from the repository root if it has none).
    """
    bundle_dir = Path(bundle_dir)
    app = Path(out)
    target = app / "model" / name
    weights = Path(model) if model is not None else bundle_dir / "models" / "model.pt"
    if model is not None and not weights.is_file():
        raise FileNotFoundError(f"model weights {str(weights)!r} do not exist")
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it (and any model trained there)")
        shutil.rmtree(target)
    for folder in ("configs", "docs"):
        shutil.copytree(bundle_dir / folder, target / folder, ignore=_IGNORE)
    license_file = bundle_dir / "LICENSE" if (bundle_dir / "LICENSE").is_file() else REPO_ROOT / "LICENSE"
    shutil.copy2(license_file, target / "LICENSE")
    shutil.copytree(PACKAGE, target / PACKAGE.name, ignore=_IGNORE)
    (target / "models").mkdir()
    served = dict(overrides or {})
    if weights.is_file():
        shutil.copy2(weights, target / "models" / "model.pt")
        card = card_path(weights)
        if card.is_file():  # the input size the weights were trained at (custom.checkpoints.TrainedModel)
            shutil.copy2(card, target / "models" / card.name)
            # MONAI Label's training starts from the served weights (its CheckpointLoader, strict), so the
            # served train.json must build the classification head they have, not train.json's default
            head = (read_card(weights) or {}).get("classifier_input")
            if head and "classifier_input" not in served:
                served["classifier_input"] = head
    _apply_overrides(target / "configs", served)
    atomic_write_text(app / "main.py", APP_MAIN.read_text(encoding="utf-8"))
    args = {"name": name, "model": str(weights) if weights.is_file() else None, "overrides": dict(overrides or {})}
    atomic_write_json(app / "produced_by.json", provenance("custom.workflows.monailabel.create_app", args))
    return target


def _apply_overrides(configs: Path, overrides: dict[str, Any]) -> None:
    """Sets each key in every served config that defines it; a key no served config has is an error (a typo)."""
    unused = set(overrides)
    for filename in SERVED_CONFIGS:
        parser = ConfigParser(ConfigParser.load_config_file(configs / filename))
        keys = [k for k in overrides if k in parser]
        for key in keys:
            parser[key] = overrides[key]
        unused -= set(keys)
        if keys:
            atomic_write_text(configs / filename, json.dumps(parser.get(), indent=4) + "\n")
    if unused:
        raise KeyError(f"override key(s) {sorted(unused)} are in none of {list(SERVED_CONFIGS)}")


def card_after_training(bundle: str | os.PathLike, trained_with: Mapping[str, Any]) -> dict[str, Any] | None:
    """Rewrites ``<bundle>/models/model.json`` for the weights a MONAI Label training wrote; returns the card.

    The served card described the weights the app started with: their input size, lesion threshold (chosen
    on their validation split) and test figures. The new card records the network and input size of the
    bundle's ``train.json``, no threshold (the class decision falls back to the argmax until the weights
    are calibrated) and how they were trained; the previous weights' hash stays under ``previous_weights``.
    Nothing is written when the training left ``model.pt`` as the card describes it (or there is none).
    """
    weights = Path(bundle) / "models" / "model.pt"
    if not weights.is_file():
        return None
    previous = stored_card(weights)  # read as stored: the card of the old weights, or a broken one, is replaced
    previous_weights = previous.get("weights") if isinstance(previous.get("weights"), dict) else None
    if previous_weights and previous_weights.get("sha256") == file_sha256(weights):
        return previous
    config = ConfigParser.load_config_file(Path(bundle) / "configs" / "train.json")
    content = {
        "network": config["network_def"]["name"],
        **{key: config[key] for key in ("spatial_size", "in_channels", "num_classes", "csb_mode", "classifier_input")},
        "lesion_threshold": None,
        "trained_with": {"by": "MONAI Label", **dict(trained_with), "previous_weights": previous_weights},
        "note": "trained by MONAI Label on its datastore; no lesion threshold or test figures measured for these "
        "weights yet (the previous card's do not apply to them)",
    }
    return write_card(weights, content)


def has_model(app: str | os.PathLike, name: str = DEFAULT_NAME) -> bool:
    """Whether the app's bundle ``name`` has the weights MONAI Label needs for inference."""
    return (Path(app) / "model" / name / "models" / "model.pt").is_file()


def monailabel_command() -> list[str]:
    """MONAI Label's command line under this Python: ``python -m monailabel.main``, run through
    ``custom/resources/monailabel_start.py``, which lets MONAI Label's pydicom-seg import under pydicom 3.

    ``python -m monailabel.main`` is what the ``monailabel`` shell script runs, with ``$MONAILABEL_PYEXE``
    or the first ``python`` on PATH (which need not be this environment's); installers that do not
    unpack the wheel's scripts (uv) leave no script at all.
    """
    if find_spec("monailabel") is None:
        raise RuntimeError(INSTALL_HINT)
    return [sys.executable, str(SERVER_MAIN)]


def server_command(
    app: str | os.PathLike,
    studies: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    models: str = DEFAULT_NAME,
) -> list[str]:
    """``monailabel start_server`` for ``app`` on the image folder ``studies`` (labels in ``studies/labels/final``)."""
    app_args = ["--app", str(app), "--studies", str(studies), "--conf", "models", models]
    return [*monailabel_command(), "start_server", *app_args, "--host", host, "--port", str(port)]


def start_server(command: list[str], **popen_kwargs: Any) -> subprocess.Popen:
    """Runs :func:`server_command`'s ``command``; ``popen_kwargs`` go to ``subprocess.Popen``."""
    return subprocess.Popen(command, **popen_kwargs)


def app_command(
    out: str, model: str | None = None, name: str = DEFAULT_NAME, overrides: dict | None = None, overwrite: bool = False
) -> None:
    """Writes the MONAI Label app folder ``out`` with this bundle as model ``name``.

    ``python scripts/monailabel.py app --out apps/nunet [--model runs/busi/model.pt]
    [--overrides "{'spatial_size': [128,128]}"]``
    """
    bundle = create_app(out, name=name, model=model, overrides=overrides, overwrite=overwrite)
    print(f"app: {Path(out).resolve()} (bundle copy: {bundle})")
    if not has_model(out, name):
        print(NO_MODEL.format(bundle=bundle))


def serve_command(
    studies: str,
    app: str = "runs/monailabel_app",
    model: str | None = None,
    name: str = DEFAULT_NAME,
    port: int = 8000,
    host: str = "127.0.0.1",
) -> None:
    """Starts ``monailabel start_server`` on ``studies`` (laying out ``app`` first if it has no main.py).

    ``python scripts/monailabel.py serve --studies my_pngs/ [--app apps/nunet] [--model PATH] [--port 8000]
    [--host 127.0.0.1]``: images are the PNG/JPG files in ``studies``; labels saved from a viewer go to
    ``<studies>/labels/final/`` and are what training uses.
    """
    if not (Path(app) / "main.py").is_file():
        create_app(app, name=name, model=model)
    elif model is not None:
        print(f"note: {app} exists, --model ignored (replace it with: app --out {app} --model {model} --overwrite)")
    if not has_model(app, name):
        print(NO_MODEL.format(bundle=Path(app) / "model" / name))
    cmd = server_command(app, studies, host=host, port=port, models=name)
    print("$ " + shlex.join(cmd), flush=True)
    server = start_server(cmd)
    try:
        sys.exit(server.wait())
    except KeyboardInterrupt:  # Ctrl-C reached the server too (same process group): let it shut down
        sys.exit(server.wait())


def main() -> None:
    """``nunet-monailabel`` and ``scripts/monailabel.py``: :func:`app_command` and :func:`serve_command`."""
    run_command({"app": app_command, "serve": serve_command})
