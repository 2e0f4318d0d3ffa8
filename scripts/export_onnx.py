"""Exports a trained bundle network to ONNX (dynamic batch and spatial size) and checks it with ONNX Runtime.

Options: ``python scripts/export_onnx.py --help`` or ``nunet-export-onnx --help``; the command is
:func:`custom.workflows.onnx_export.export_onnx_command`.
"""

from custom.workflows.onnx_export import main

if __name__ == "__main__":
    main()
