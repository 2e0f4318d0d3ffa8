"""The bundle's unit test in the style of the MONAI Model Zoo's ``ci/unit_tests``: train, evaluate, infer.

Each workflow runs through ``ConfigWorkflow`` with its properties checked, on the synthetic demo data the
bundle generates into a temporary folder (BUSI layout, tiny images), at 32x32 for 2 epochs. Run it from
anywhere: ``python -m unittest discover -s <bundle>/tests``.
"""

import os
import shutil
import sys
import tempfile
import unittest

from monai.bundle import ConfigWorkflow

BUNDLE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BUNDLE_ROOT)  # the configs reference the bundle's own package, custom/

TINY = {"spatial_size": [32, 32], "batch_size": 4, "num_workers": 0}


def check_workflow(workflow: ConfigWorkflow, check_properties: bool = False) -> None:
    """What the zoo's ``ci/unit_tests/utils.py`` does: initialize, check the properties, run, finalize."""
    workflow.initialize()
    if check_properties:
        missing = workflow.check_properties()
        if missing:
            raise ValueError(f"check properties for workflow failed: {missing}")
    workflow.run()
    workflow.finalize()


class TestBreastUltrasoundNUnet(unittest.TestCase):
    def setUp(self):
        self.work_dir = tempfile.mkdtemp()
        self.override = {
            "bundle_root": BUNDLE_ROOT,
            "dataset_dir#root": os.path.join(self.work_dir, "demo"),
            "output_dir": os.path.join(self.work_dir, "run"),
            **TINY,
        }

    def tearDown(self):
        shutil.rmtree(self.work_dir)

    def workflow(self, workflow_type, *configs, **override):
        return ConfigWorkflow(
            workflow_type=workflow_type,
            config_file=[os.path.join(BUNDLE_ROOT, "configs", c) for c in configs],
            logging_file=os.path.join(BUNDLE_ROOT, "configs", "logging.conf"),
            meta_file=os.path.join(BUNDLE_ROOT, "configs", "metadata.json"),
            **{**self.override, **override},
        )

    def test_train_evaluate_infer(self):
        check_workflow(self.workflow("train", "train.json", epochs=2), check_properties=True)
        model = os.path.join(self.work_dir, "run", "model.pt")
        self.assertTrue(os.path.isfile(model))
        # evaluate.json overrides train.json, so the workflow stays "train" (as in the zoo's own tests)
        check_workflow(self.workflow("train", "train.json", "evaluate.json", ckpt_path=model))
        self.assertTrue(os.path.isfile(os.path.join(self.work_dir, "run", "metrics.json")))
        predictions = os.path.join(self.work_dir, "predictions")
        infer = self.workflow("infer", "inference.json", ckpt_path=model, output_dir=predictions)
        check_workflow(infer, check_properties=True)
        self.assertTrue(any(name.endswith("_seg.png") for name in os.listdir(predictions)))


if __name__ == "__main__":
    unittest.main()
