"""The applications built on the bundle: the code behind every command of ``scripts/`` and every console entry point.

Each ``scripts/<name>.py`` is a shim over one ``main`` function here, which ``pyproject.toml`` also declares as a
console entry point (``nunet-<name>``); ``main`` runs the module's ``*_command`` function through the one command
line of :mod:`custom.cli` (its signature is the command's options, its docstring the ``--help``).

- :mod:`.prepare`: dataset preparation, duplicate search and the demo dataset (``prepare_data.py``,
  ``find_duplicates.py``, ``make_demo_data.py``);
- :mod:`.crossval`: k-fold training and test evaluation of a config (``cross_validate.py``), over
  :mod:`.run_summary` (the run's protocol, summary and report) and :mod:`.calibrate` (each fold's temperature
  and threshold on its validation split; ``calibrate.py``);
- :mod:`.ablation`: the N-Unet paper's ablations as cross-validation runs (``ablate.py``);
- :mod:`.benchmark`: our training and inference pipeline against a plain baseline, and
  :mod:`.benchmark_report`, its command line and tables (``benchmark.py``);
- :mod:`.gpu_check`: the prepared GPU measurement (``gpu_check.py``);
- :mod:`.lr_range`: the learning-rate range test (``lr_find.py``);
- :mod:`.demo_run`: the demo's training, evaluation and inference (``demo.py``);
- :mod:`.model_stats`, :mod:`.onnx_export`, :mod:`.release_model`, :mod:`.reporting`: the network sizes, the
  ONNX export, the release of a fold as the bundle's model, the report (``model_stats.py``, ``export_onnx.py``,
  ``release_model.py``, ``report.py``);
- :mod:`.packaging`: the Model Zoo archive (``export_bundle.py``);
- :mod:`.monailabel`: the MONAI Label app and server (``monailabel.py``);
- :mod:`.bundle_command`: one way to run a ``monai.bundle run`` command from the applications.

Each imports what it needs when called, so ``import custom`` stays cheap.
"""
