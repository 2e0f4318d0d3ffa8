"""Networks of the project and the one registry that maps a network name to its constructor.

Configs (``"_target_": "custom.networks.get_network", "name": ...``) and ``scripts/model_stats.py``
build networks only through :func:`get_network`, so adding a peer network is one module plus one
line in :data:`NETWORKS`. The registry holds dotted paths resolved on first use, so a network's
optional dependencies are only imported when that network is built.

The contract every registered network keeps (the engine, losses and post-processing rely on it):

- constructor keywords ``spatial_dims``, ``in_channels`` and ``num_classes`` (class 0 = normal);
- ``forward`` returns ``{"seg": (B, 1, *spatial) logits, "cls": (B, num_classes) logits}`` (only
  the keys of the tasks it has); in training mode it may add ``"aux_seg"``, a list of further
  segmentation logits (deep supervision, coarse masks) that only its loss reads.

Outputs under this contract are averaged at the probability level by :mod:`custom.networks.ensemble`
(ensembles of checkpoints, test-time augmentation).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

import torch.nn as nn

from custom.checkpoints import load_model_weights
from custom.errors import InputError
from custom.networks.csb import (
    CSB_MODES,
    ConditionalSegmentationBoost,
    SegmentationWithCSB,
    check_csb_mode,
    csb_gate,
    lesion_probability,
)
from custom.networks.ensemble import ProbabilityEnsemble, average_probabilities, ensemble
from custom.networks.nunet import NUNet

__all__ = [
    "ABLATIONS",
    "CSB_MODES",
    "ConditionalSegmentationBoost",
    "NETWORKS",
    "NUNet",
    "ProbabilityEnsemble",
    "SegmentationWithCSB",
    "average_probabilities",
    "check_csb_mode",
    "csb_gate",
    "ensemble",
    "get_network",
    "lesion_probability",
]

NETWORKS: dict[str, str] = {
    # N-Unet
    "nunet": "custom.networks.nunet.NUNet",
    # peers (ACSNet, Aumente-Maestro et al., MTL-OCA; Multi-task U-Net is the Aumente-Maestro et al. recipe on "attention_unet")
    "acsnet": "custom.networks.acsnet.ACSNet",
    "mt_unetpp": "custom.networks.mt_unetpp.MTUNetPlusPlus",
    "mtl_oca": "custom.networks.mtl_oca.MTLOCA",
    # baselines of the N-Unet paper's tables: MONAI networks with a head on the batch-normalised bottleneck
    "unet": "custom.networks.baselines.UNetWithClassifier",
    "attention_unet": "custom.networks.baselines.AttentionUNetWithClassifier",
    "unetr": "custom.networks.baselines.UNETRWithClassifier",
    "swin_unetr": "custom.networks.baselines.SwinUNETRWithClassifier",
}

# The N-Unet variants of the paper's ablations (section 4.8) as constructor kwargs of "nunet".
# Table 7 crosses AMTL (a loss, chosen by the training config, not here) with CSB, AFF and CLAE, so
# each network below also serves the matching "A_..." row trained with the AMTL loss.
ABLATIONS: dict[str, dict] = {
    # Table 7 "Unet" / "AMTLUnet": plain U-Net encoder-decoder plus the classification head
    "unet_cls": {"aff": False, "clae": False, "csb_mode": "off", "task": "multi"},
    "csb": {"aff": False, "clae": False, "csb_mode": "hard", "task": "multi"},
    "aff": {"aff": True, "clae": False, "csb_mode": "off", "task": "multi"},
    "clae": {"aff": False, "clae": True, "csb_mode": "off", "task": "multi"},
    "csb_aff": {"aff": True, "clae": False, "csb_mode": "hard", "task": "multi"},
    "csb_clae": {"aff": False, "clae": True, "csb_mode": "hard", "task": "multi"},
    "aff_clae": {"aff": True, "clae": True, "csb_mode": "off", "task": "multi"},
    # N-Unet itself ("CSB_AFF_CLAEUnet" with the AMTL loss)
    "full": {"aff": True, "clae": True, "csb_mode": "hard", "task": "multi"},
    # the full model minus CSB: the same network as "aff_clae", named as the leave-one-out variant
    "csb_off": {"aff": True, "clae": True, "csb_mode": "off", "task": "multi"},
    # the confidence-weighted gate proposed as future work (section 5.6)
    "csb_soft": {"aff": True, "clae": True, "csb_mode": "soft", "task": "multi"},
    # Table 8 single-task counterparts "N-Unet-Seg" and "N-Unet-Cls"
    "seg_only": {"aff": True, "clae": True, "csb_mode": "off", "task": "seg"},
    "cls_only": {"aff": True, "clae": True, "csb_mode": "off", "task": "cls"},
}


def get_network(name: str, weights: str | os.PathLike | None = None, **kwargs) -> nn.Module:
    """Builds the network registered as ``name`` with the constructor keyword arguments ``kwargs``.

    ``weights``: a checkpoint of the same network to start from (a released ``model.pt`` or a run's
    checkpoint), loaded safely and checked finite: fine-tuning the released model on new data, or
    continuing a run at another input size, is then ``--network_def#weights <path>``.

    Raises:
        InputError: when ``name`` is not in :data:`NETWORKS` (the message lists the known names), or
            when ``weights`` is missing, not a checkpoint or of another network.
    """
    if name not in NETWORKS:
        raise InputError(f"network {name!r} is unknown; registered networks: {', '.join(sorted(NETWORKS))}.")
    module, _, attribute = NETWORKS[name].rpartition(".")
    constructor: Callable[..., nn.Module] = getattr(importlib.import_module(module), attribute)
    network = constructor(**kwargs)
    if weights is not None:
        load_model_weights(network, weights)
    return network
