"""Channel normalisation, mask binarisation, class labels and the multi-task decision transform."""

import warnings

import pytest
import torch
from monai.data import MetaTensor

from custom.transforms import (
    BinarizeMaskd,
    ClassLabeld,
    LoadPictured,
    MatchLabelSized,
    MultiTaskDecisiond,
    NormalizeChannelsd,
)


@pytest.mark.parametrize("channels_in", [1, 2, 3, 4])
@pytest.mark.parametrize("channels_out", [1, 3])
def test_normalize_channels_accepts_gray_rgb_and_alpha(channels_in, channels_out):
    img = torch.rand(channels_in, 5, 6)
    out = NormalizeChannelsd("image", channels=channels_out)({"image": img})["image"]
    assert out.shape == (channels_out, 5, 6)
    if channels_in in (1, 2) and channels_out == 3:  # grey (+alpha): the grey plane is repeated
        assert torch.equal(out[0], img[0]) and torch.equal(out[2], img[0])
    if channels_in == 4 and channels_out == 3:  # RGBA: alpha dropped
        assert torch.equal(out, img[:3])


def test_normalize_channels_rejects_odd_channel_counts():
    with pytest.raises(ValueError, match="1-4 channels"):
        NormalizeChannelsd("image")({"image": torch.rand(5, 4, 4)})


def test_binarize_mask_any_nonzero_is_lesion():
    rgb = torch.zeros(3, 4, 4)
    rgb[1, 0, 0] = 255  # green pixel
    rgb[0, 1, 1] = 0.3  # faint anti-aliased red edge
    out = BinarizeMaskd("label")({"label": rgb})["label"]
    assert out.shape == (1, 4, 4)
    assert out.sum() == 2 and out[0, 0, 0] == 1 and out[0, 1, 1] == 1
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_binarize_rgba_mask_uses_alpha_only_for_transparency():
    rgba = torch.zeros(4, 3, 3)
    rgba[3] = 255  # opaque everywhere: black opaque pixels are background
    rgba[:3, 0, 0] = 255  # one white opaque pixel
    rgba[0, 2, 2] = 255  # a red pixel that is fully transparent
    rgba[3, 2, 2] = 0
    out = BinarizeMaskd("label")({"label": rgba})["label"]
    assert out.shape == (1, 3, 3) and out.sum() == 1 and out[0, 0, 0] == 1


def test_class_label_binary_from_record_or_mask():
    mask = torch.zeros(1, 4, 4)
    assert int(ClassLabeld("label", 2)({"label": mask, "lesion": 1})["cls"]) == 1
    assert int(ClassLabeld("label", 2)({"label": mask})["cls"]) == 0
    mask[0, 2, 2] = 1
    assert int(ClassLabeld("label", 2)({"label": mask})["cls"]) == 1


def test_class_label_three_classes_needs_the_record():
    assert int(ClassLabeld("label", 3)({"label": torch.zeros(1, 2, 2), "class": 2})["cls"]) == 2
    with pytest.raises(KeyError, match="class"):
        ClassLabeld("label", 3)({"label": torch.zeros(1, 2, 2), "id": "case 1"})
    with pytest.raises(ValueError, match="outside"):
        ClassLabeld("label", 2)({"label": torch.zeros(1, 2, 2), "lesion": 3})


def _sample(cls_logits, seg_logit=2.0, label_cls=1):
    seg = torch.full((1, 4, 4), seg_logit)
    seg[0, 0, 0] = -5.0
    return {
        "image": MetaTensor(torch.zeros(3, 4, 4)),
        "pred": {"seg": seg, "cls": torch.tensor(cls_logits)},
        "label": {"seg": torch.ones(1, 4, 4), "cls": torch.tensor(label_cls)},
    }


def test_decision_hard_csb_zeroes_masks_of_images_predicted_normal():
    normal = MultiTaskDecisiond(csb_mode="hard")(_sample([3.0, -3.0]))
    assert normal["seg_pred"].sum() == 0 and normal["seg_prob"].max() == 0
    assert normal["result"]["predicted_class"] == "normal" and normal["result"]["csb"]["scale"] == 0.0
    lesion = MultiTaskDecisiond(csb_mode="hard")(_sample([-3.0, 3.0]))
    assert torch.allclose(lesion["seg_prob"], torch.sigmoid(lesion["pred"]["seg"]))
    assert lesion["seg_pred"].sum() == 15
    assert torch.equal(lesion["lesion_pred_onehot"], torch.tensor([0.0, 1.0]))
    assert torch.equal(lesion["lesion_onehot"], torch.tensor([0.0, 1.0]))


def test_decision_soft_and_off():
    sample = _sample([0.0, 0.0])  # lesion probability 0.5
    soft = MultiTaskDecisiond(csb_mode="soft")(sample)
    assert torch.allclose(soft["seg_prob"], 0.5 * torch.sigmoid(sample["pred"]["seg"]))
    assert soft["result"]["csb"]["scale"] == pytest.approx(0.5)
    off = MultiTaskDecisiond(csb_mode="off")(_sample([5.0, -5.0]))
    assert off["seg_pred"].sum() == 15  # predicted normal, mask kept


def test_decision_three_classes_and_unknown_mode():
    out = MultiTaskDecisiond(csb_mode="hard", num_classes=3)(_sample([-2.0, 1.0, 3.0], label_cls=2))
    assert out["result"]["predicted_class"] == "malignant"
    assert out["lesion_prob"].shape == (1,) and float(out["lesion_true"][0]) == 1.0
    assert out["cls_label_onehot"].tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="csb_mode"):
        MultiTaskDecisiond(csb_mode="hardest")


def test_decision_segmentation_only_network_has_no_gate():
    sample = _sample([0.0, 0.0])
    del sample["pred"]["cls"]
    out = MultiTaskDecisiond(csb_mode="hard")(sample)
    assert "cls_prob" not in out and out["result"]["csb"]["mode"] == "off"
    assert out["seg_pred"].sum() == 15


def test_match_label_size_brings_logits_to_the_original_mask_size_before_the_decision():
    sample = _sample([-3.0, 3.0])
    sample["label"]["seg"] = torch.ones(1, 10, 6)  # the original mask, larger than the network output
    resized = MatchLabelSized()(sample)
    assert resized["pred"]["seg"].shape == (1, 10, 6) and resized["pred"]["cls"] is sample["pred"]["cls"]
    decided = MultiTaskDecisiond()(resized)
    assert decided["seg_pred"].shape == decided["seg_label"].shape == (1, 10, 6)
    same_size = _sample([-3.0, 3.0])
    assert MatchLabelSized()(same_size)["pred"]["seg"] is same_size["pred"]["seg"]  # validation: untouched
    assert "pred" not in MatchLabelSized()({"image": torch.zeros(1)})  # nothing to match


def test_training_scale_augmentation_shrinks_and_enlarges_with_image_and_mask_aligned():
    """train.json's random transforms: lesion areas both below and above the original, the mask on the bright lesion."""
    from conftest import CONFIGS
    from monai.bundle import ConfigParser
    from monai.transforms import Compose

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({"spatial_size": [64, 64]})
    augment = Compose(parser.get_parsed_content("augmentation")).set_random_state(seed=0)
    lesion = torch.zeros(1, 64, 64)
    lesion[:, 22:42, 24:40] = 1  # a bright lesion in the middle: zoom moves its edges, never off the image
    ratios = []
    for _ in range(60):
        out = augment({"image": MetaTensor(lesion.clone()), "label": MetaTensor(lesion.clone())})
        image, mask = torch.as_tensor(out["image"]), torch.as_tensor(out["label"])
        assert image.shape == mask.shape == (1, 64, 64)
        inside = (image > 0.5) == (mask > 0.5)
        assert inside.float().mean() > 0.97  # aligned up to the interpolation of the edge
        ratios.append(float(mask.sum() / lesion.sum()))
    assert min(ratios) < 0.8 and max(ratios) > 1.2  # zoomed out (area x 0.64 at most) and in (x 1.44)


def _photo(height: int, width: int) -> dict:
    """A textured 3-channel image with a round lesion mask, as MetaTensors (what LoadImaged gives)."""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    gray = torch.sin(xx / 37.0) * torch.cos(yy / 53.0) * 100 + (xx + yy) % 256
    mask = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2 < (height / 4) ** 2).float()
    return {"image": MetaTensor(gray.expand(3, -1, -1).float()), "label": MetaTensor(mask[None])}


RESIZE = {"keys": ["image", "label"], "mode": ["bicubic", "nearest"], "anti_aliasing": [True, False]}


@pytest.mark.parametrize("height, width, size", [(700, 1048, 96), (1200, 1600, 32)])
def test_anti_aliased_resize_matches_monai_within_one_percent_and_inverts_to_the_original_size(height, width, size):
    from monai.transforms import Resized

    from custom.transforms import AntiAliasedResized

    data = _photo(height, width)
    ours = AntiAliasedResized(spatial_size=[size, size], **RESIZE)
    fast, exact = ours(dict(data)), Resized(spatial_size=[size, size], **RESIZE)(dict(data))
    value_range = float(exact["image"].max() - exact["image"].min())
    difference = float((fast["image"] - exact["image"]).abs().max()) / value_range
    if max(height, width) / size <= 16:  # BUSI's largest image at 96 x 96: MONAI's own pixels
        assert difference == 0
    else:
        assert 0 < difference < 0.01
    assert torch.equal(fast["label"], exact["label"])
    assert torch.allclose(fast["image"].affine, exact["image"].affine)
    restored = ours.inverse(fast)
    assert restored["image"].shape[1:] == (height, width) and restored["label"].shape[1:] == (height, width)


@pytest.mark.benchmark
def test_anti_aliased_resize_of_25_megapixels_takes_under_a_second():
    import time

    from custom.transforms import AntiAliasedResized

    data = _photo(5000, 5000)
    start = time.perf_counter()
    out = AntiAliasedResized(spatial_size=[32, 32], **RESIZE)(data)
    assert time.perf_counter() - start < 1.0  # MONAI's Resized: about 100 s on two cores
    assert out["image"].shape == (3, 32, 32)


def test_load_pictured_says_nothing_about_the_readers_it_never_uses(capfd, caplog):
    """MONAI registers its GPU-DICOM reader inside LoadImaged; on a CPU machine it would warn at every run."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LoadPictured(keys="image")
    assert not [w for w in caught if "nvImageCodec" in str(w.message)]
    assert "nvImageCodec" not in capfd.readouterr().err + caplog.text
