"""The validation metrics of a network, assembled from MONAI's metric handlers for the tasks it has.

A network may segment, classify or both (N-Unet's single-task variants of its Table 8 have one
head). A metric of a missing head would fail on its missing output key, so the configs ask these
factories for the metrics instead of listing them: the same names (``val_dice_all``, ``val_dice``,
``val_iou``, ``val_accuracy``, ``val_auc``, ``val_loss``) whatever the network, each present only
when its head is. Post-processed keys come from :class:`custom.transforms.MultiTaskDecisiond`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ignite.metrics import Loss
from monai.handlers import ROCAUC, ConfusionMatrix, IgniteMetricHandler, MeanDice, MeanIoUHandler, from_engine
from monai.metrics import DiceMetric
from torch import nn

from custom.keys import DecisionKeys

from .collate import batch_size_of, collate_pred_label

TASK_HEADS = {"multi": ("cls", "seg"), "seg": ("seg",), "cls": ("cls",)}


def network_heads(network: nn.Module) -> tuple[str, ...]:
    """The outputs a network produces: ``"cls"``, ``"seg"`` or both (networks without a ``task`` have both)."""
    return TASK_HEADS[getattr(network, "task", "multi")]


def _segmentation_metrics() -> dict[str, Callable]:
    seg = from_engine([DecisionKeys.SEG_PRED, DecisionKeys.SEG_LABEL])
    return {
        # Dice over all images, an empty mask on an empty ground truth scoring 1: selects the best model
        "val_dice_all": lambda: IgniteMetricHandler(
            metric_fn=DiceMetric(include_background=True, ignore_empty=False), output_transform=seg
        ),
        "val_dice": lambda: MeanDice(include_background=True, output_transform=seg),
        "val_iou": lambda: MeanIoUHandler(include_background=True, output_transform=seg),
    }


def _classification_metrics() -> dict[str, Callable]:
    return {
        "val_accuracy": lambda: ConfusionMatrix(
            metric_name="accuracy",
            include_background=False,
            output_transform=from_engine([DecisionKeys.LESION_PRED_ONEHOT, "lesion_onehot"]),
        ),
        "val_auc": lambda: ROCAUC(output_transform=from_engine([DecisionKeys.LESION_PROB, DecisionKeys.LESION_TRUE])),
    }


def key_metric_name(network: nn.Module) -> str:
    """The metric that selects the best checkpoint: ``val_dice_all`` with a segmentation head, else ``val_auc``."""
    return "val_dice_all" if "seg" in network_heads(network) else "val_auc"


def key_metric(network: nn.Module) -> dict:
    """``{name: handler}`` of :func:`key_metric_name`, for an evaluator's ``key_val_metric``."""
    name = key_metric_name(network)
    return {name: {**_segmentation_metrics(), **_classification_metrics()}[name]()}


def validation_metrics(
    network: nn.Module, loss_fn: nn.Module | None = None, names: Sequence[str] | None = None
) -> dict:
    """The additional validation metrics of ``network``'s heads (the key metric excluded), and ``val_loss``.

    Args:
        network: the network validated; its heads decide the metrics.
        loss_fn: the training loss, reported as ``val_loss`` (with AMTL's learned weights) when given.
        names: only these metrics, where the network has them (``evaluate.json`` keeps a short list).
    """
    heads = network_heads(network)
    builders: dict[str, Callable] = {}
    if "seg" in heads:
        builders.update(_segmentation_metrics())
    if "cls" in heads:
        builders.update(_classification_metrics())
    if loss_fn is not None:
        builders["val_loss"] = lambda: Loss(loss_fn, output_transform=collate_pred_label(), batch_size=batch_size_of)
    chosen = [n for n in builders if n != key_metric_name(network) and (names is None or n in names)]
    return {name: builders[name]() for name in chosen}
