"""The applications built on the bundle, one module per command of ``scripts/``.

- :mod:`.crossval`: k-fold training, calibration and test evaluation of a config (``cross_validate.py``);
- :mod:`.ablation`: the N-Unet paper's ablations as cross-validation runs (``ablate.py``);
- :mod:`.benchmark`: our training and inference pipeline against a plain baseline (``benchmark.py``);
- :mod:`.gpu_check`: the prepared GPU measurement (``gpu_check.py``);
- :mod:`.packaging`: the Model Zoo archive (``export_bundle.py``);
- :mod:`.monailabel`: the MONAI Label app (``monailabel.py``).

Each imports what it needs when called, so ``import custom`` stays cheap.
"""
