"""MONAI Label's command line (``python -m monailabel.main``) on pydicom 3: ``python monailabel_start.py start_server``.

MONAI Label 0.8.5 imports pydicom-seg 0.4.1 as its server starts, and pydicom-seg takes
``SegmentationStorage`` from ``pydicom._storage_sopclass_uids``, a module that pydicom 3 folded into
``pydicom.uid``; that import is the one thing pydicom-seg lacks on pydicom 3, and it has had no release
since. Registering ``pydicom.uid`` under the old name first lets the bundle decode compressed DICOM with
pydicom 3 while MONAI Label runs unchanged. The app's ``main.py`` does the same for the processes that
load the app (MONAI Label's training among them); the server imports pydicom-seg before it loads the app.

Run as a file, not as ``custom.…``: importing the package here would make the server use this copy of
it instead of the app's own.
"""

import runpy
import sys

import pydicom.uid

if "pydicom._storage_sopclass_uids" not in sys.modules:
    sys.modules["pydicom._storage_sopclass_uids"] = pydicom.uid

if __name__ == "__main__":
    runpy.run_module("monailabel.main", run_name="__main__", alter_sys=True)
