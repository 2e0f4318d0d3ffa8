"""Serve the bundle with MONAI Label (monailabel 0.8.5): lay out the app, then start the server.

    python scripts/monailabel.py app --out apps/nunet [--model runs/busi/model.pt] [--overrides "{'spatial_size': [128,128]}"]
    python scripts/monailabel.py serve --studies my_pngs/ [--app apps/nunet] [--model PATH] [--port 8000] [--host 127.0.0.1]

``serve`` lays the app out first when ``--app`` has none. Images are the PNG/JPG files in ``--studies``;
labels saved from a viewer go to ``<studies>/labels/final/`` and are what training uses.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from custom.cli import run as run_command
from custom.workflows.monailabel import DEFAULT_NAME, create_app, has_model, server_command, start_server

NO_MODEL = (
    "note: {bundle} has no models/model.pt, so the server offers training only; train from the viewer "
    "(or pass --model), then restart the server to run inference."
)


def app(
    out: str, model: str | None = None, name: str = DEFAULT_NAME, overrides: dict | None = None, overwrite: bool = False
) -> None:
    """Writes the MONAI Label app folder ``out`` with this bundle as model ``name``."""
    bundle = create_app(out, name=name, model=model, overrides=overrides, overwrite=overwrite)
    print(f"app: {Path(out).resolve()} (bundle copy: {bundle})")
    if not has_model(out, name):
        print(NO_MODEL.format(bundle=bundle))


def serve(
    studies: str,
    app: str = "runs/monailabel_app",
    model: str | None = None,
    name: str = DEFAULT_NAME,
    port: int = 8000,
    host: str = "127.0.0.1",
) -> None:
    """Starts ``monailabel start_server`` on ``studies`` (laying out ``app`` first if it has no main.py)."""
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


if __name__ == "__main__":
    run_command({"app": app, "serve": serve})
