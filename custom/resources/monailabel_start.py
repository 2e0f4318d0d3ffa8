"""MONAI Label's command line (``python -m monailabel.main``) on pydicom 3: ``python monailabel_start.py start_server``.

MONAI Label 0.8.5 imports pydicom-seg 0.4.1 as its server starts, and pydicom-seg takes
``SegmentationStorage`` from ``pydicom._storage_sopclass_uids``, a module that pydicom 3 folded into
``pydicom.uid``; that import is the one thing pydicom-seg lacks on pydicom 3, and it has had no release
since. Registering ``pydicom.uid`` under the old name first lets the bundle decode compressed DICOM with
pydicom 3 while MONAI Label runs unchanged. The app's ``main.py`` does the same for the processes that
load the app (MONAI Label's training among them); the server imports pydicom-seg before it loads the app.

``start_server`` serves :data:`app` (``--uvicorn_app monailabel_start:app`` unless one is given): MONAI
Label's own web app, with malformed JSON in a request's form fields (``params`` of ``/infer``, ``params``
and ``info`` of ``/datastore``) answered ``400`` and one line instead of a bare ``500``; MONAI Label's
endpoints parse those fields with ``json.loads`` before the bundle's app sees the request.

Run as a file, not as ``custom.…``: importing the package here would make the server use this copy of
it instead of the app's own.
"""

import json
import runpy
import sys

import pydicom.uid

if "pydicom._storage_sopclass_uids" not in sys.modules:
    sys.modules["pydicom._storage_sopclass_uids"] = pydicom.uid


class RequestErrors:
    """ASGI app: ``monailabel.app:app`` with a handler for malformed JSON, imported at the first event.

    MONAI Label reads its settings from the environment when ``monailabel.app`` is imported, and
    ``start_server`` sets that environment just before it starts uvicorn, so the import waits for
    uvicorn's first event (the lifespan start), before the app builds its middleware.
    """

    def __init__(self) -> None:
        self.app = None

    async def __call__(self, scope, receive, send) -> None:
        if self.app is None:
            from fastapi.responses import JSONResponse
            from monailabel.app import app

            async def malformed_json(request, exc: json.JSONDecodeError) -> JSONResponse:
                detail = f"a form field of {request.url.path} is not valid JSON: {exc.msg} at character {exc.pos}"
                return JSONResponse(status_code=400, content={"detail": detail})

            app.add_exception_handler(json.JSONDecodeError, malformed_json)
            self.app = app
        await self.app(scope, receive, send)


app = RequestErrors()

if __name__ == "__main__":
    if sys.argv[1:2] == ["start_server"] and not any(a.split("=")[0] == "--uvicorn_app" for a in sys.argv):
        sys.argv += ["--uvicorn_app", "monailabel_start:app"]
    runpy.run_module("monailabel.main", run_name="__main__", alter_sys=True)
