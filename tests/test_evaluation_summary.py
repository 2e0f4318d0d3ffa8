"""The report statistics (custom.evaluation.summary / statistics) against scikit-learn, numpy and hand-computed cases."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

from custom.evaluation import aggregate_folds, bootstrap_ci, paired_comparison, read_per_image, summarize

CLASSES = ("normal", "benign", "malignant")


def random_rows(n: int = 150, seed: int = 1) -> list[dict]:
    """3-class rows as EvaluationWriter writes them, with informative but imperfect predictions."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.2 * np.eye(3)[target]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    rows = []
    for i in range(n):
        lesion = int(target[i] > 0)
        pred_class = int(prob[i].argmax())
        gt_area = int(rng.integers(50, 5000)) if lesion else 0
        pred_area = int(rng.integers(0, 5000)) if pred_class > 0 else 0
        dice = float(rng.uniform()) if lesion else math.nan
        rows.append(
            {
                "id": f"case{i:03d}",
                "image": f"img{i}.png",
                "class_name": CLASSES[target[i]],
                "size_tier": "none" if not lesion else ("small", "medium", "large")[i % 3],
                "lesion_area": gt_area,
                "lesion": lesion,
                "target": int(target[i]),
                "pred_class": pred_class,
                "lesion_pred": int(pred_class > 0),
                "lesion_prob": float(1 - prob[i, 0]),
                **{f"prob_{c}": float(prob[i, k]) for k, c in enumerate(CLASSES)},
                "gt_area": gt_area,
                "pred_area": pred_area,
                "dice": dice,
                "iou": dice / (2 - dice) if lesion else math.nan,
                "pixel_accuracy": float(rng.uniform(0.8, 1)),
                "sensitivity": float(rng.uniform()) if lesion else math.nan,
                "precision": float(rng.uniform()) if lesion else math.nan,
            }
        )
    return rows


def seg_row(gt_area: int, pred_area: int, dice: float = math.nan, class_name: str = "benign", **extra) -> dict:
    lesion = int(gt_area > 0)
    iou = dice / (2 - dice) if lesion else math.nan
    return {
        "id": f"c{gt_area}-{pred_area}-{dice}",
        "class_name": class_name,
        "lesion": lesion,
        "lesion_pred": int(pred_area > 0),
        "lesion_prob": 0.9 if pred_area else 0.1,
        "gt_area": gt_area,
        "pred_area": pred_area,
        "dice": dice,
        "iou": iou,
        "pixel_accuracy": 0.9,
        "sensitivity": dice if lesion else math.nan,
        "precision": dice if lesion else math.nan,
        **extra,
    }


def test_lesion_classification_matches_sklearn():
    rows = random_rows()
    y = [r["lesion"] for r in rows]
    y_hat = [r["lesion_pred"] for r in rows]
    cls = summarize(rows, n_bootstrap=10)["classification"]
    p, r, f, _ = precision_recall_fscore_support(y, y_hat, average="binary")
    assert 0 < sum(y_hat) < len(y_hat) and cls["accuracy"] < 1  # a non-trivial case
    assert cls["accuracy"] == pytest.approx(accuracy_score(y, y_hat))
    assert (cls["precision"], cls["recall"], cls["f1"]) == pytest.approx((p, r, f))
    assert cls["auc"] == pytest.approx(roc_auc_score(y, [r["lesion_prob"] for r in rows]))
    assert cls["confusion_matrix"] == confusion_matrix(y, y_hat).tolist()  # [[TN, FP], [FN, TP]]


def test_three_class_matches_sklearn():
    rows = random_rows(seed=2)
    target = [r["target"] for r in rows]
    pred = [r["pred_class"] for r in rows]
    prob = [[r[f"prob_{c}"] for c in CLASSES] for r in rows]
    cls3 = summarize(rows, n_bootstrap=10)["classification_3class"]
    assert cls3["accuracy"] == pytest.approx(accuracy_score(target, pred))
    assert cls3["macro_auc"] == pytest.approx(roc_auc_score(target, prob, multi_class="ovr", average="macro"))
    p, r, f, _ = precision_recall_fscore_support(target, pred, labels=[0, 1, 2], average=None)
    for k, name in enumerate(CLASSES):
        got = cls3["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p[k], r[k], f[k]))


def test_benign_vs_malignant_accuracy_only_counts_lesions_graded_as_lesions():
    # (target, pred): two correct gradings, one wrong grading, a missed lesion and a false alarm (both excluded)
    pairs = [(1, 1), (2, 2), (1, 2), (2, 0), (0, 1), (0, 0)]
    rows = [
        {
            "lesion": int(t > 0),
            "lesion_pred": int(p > 0),
            "lesion_prob": float(p > 0),
            "target": t,
            "pred_class": p,
            **{f"prob_{c}": float(k == p) for k, c in enumerate(CLASSES)},
        }
        for t, p in pairs
    ]
    cls3 = summarize(rows, n_bootstrap=10)["classification_3class"]
    assert cls3["benign_vs_malignant_accuracy"] == pytest.approx(2 / 3)
    assert cls3["accuracy"] == pytest.approx(3 / 6)


def test_segmentation_conventions_with_empty_ground_truth_and_empty_prediction():
    rows = [
        seg_row(1000, 900, 0.8),  # lesion, found
        seg_row(500, 0, 0.0),  # lesion, empty prediction: Dice 0 in both conventions
        seg_row(0, 0, class_name="normal"),  # empty / empty: excluded (N-Unet), 1 (Aumente-Maestro et al.)
        seg_row(
            0, 40, class_name="normal"
        ),  # empty GT, predicted foreground: excluded (N-Unet), 0 (Aumente-Maestro et al.)
    ]
    out = summarize(rows, n_bootstrap=10)
    assert out["n_images"] == 4 and out["n_lesion_images"] == 2
    assert out["segmentation"]["dice"] == pytest.approx(0.4)
    assert out["segmentation"]["iou"] == pytest.approx((0.8 / 1.2 + 0) / 2)
    assert out["segmentation"]["pixel_accuracy"] == pytest.approx(0.9)
    assert out["segmentation_all_images"]["dice_all"] == pytest.approx((0.8 + 0 + 1 + 0) / 4)
    assert out["segmentation_all_images"]["normal_false_positive_rate"] == pytest.approx(0.5)
    assert out["by_class"]["normal"] == {
        "n": 2,
        "dice": pytest.approx(math.nan, nan_ok=True),
        "iou": pytest.approx(math.nan, nan_ok=True),
        "dice_all": 0.5,
        "accuracy": 0.5,
    }
    assert out["by_class"]["benign"]["dice"] == pytest.approx(0.4)
    assert out["by_class"]["benign"]["accuracy"] == pytest.approx(0.5)
    assert set(out["conventions"]) >= {"classification", "segmentation", "segmentation_all_images", "by_class", "ci95"}


def test_size_tiers_follow_the_thresholds_passed_in():
    # the rows' own tiers (from the test split) disagree with the training thresholds (100, 1000)
    rows = [
        seg_row(10, 10, 0.2, size_tier="large", lesion_area=10),
        seg_row(500, 500, 0.6, size_tier="small", lesion_area=500),
        seg_row(2000, 2000, 0.9, size_tier="small", lesion_area=2000),
        seg_row(3000, 3000, 0.7, size_tier="small", lesion_area=3000),
        seg_row(0, 0, class_name="normal", size_tier="none", lesion_area=0),
    ]
    tiers = summarize(rows, size_thresholds=(100, 1000), n_bootstrap=10)["by_size_tier"]
    assert {t: tiers[t]["n"] for t in tiers} == {"small": 1, "medium": 1, "large": 2}
    assert tiers["small"]["dice"] == pytest.approx(0.2)
    assert tiers["large"]["dice"] == pytest.approx(0.8)
    own = summarize(rows, n_bootstrap=10)["by_size_tier"]
    assert {t: own[t]["n"] for t in own} == {"small": 3, "medium": 0, "large": 1}
    assert own["large"]["dice"] == pytest.approx(0.2)


def test_read_per_image_types(tmp_path):
    path = tmp_path / "per_image.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "image", "class_name", "lesion", "lesion_prob", "dice", "gt_area"])
        writer.writerow(["007", "a.png", "normal", "0", "0.25", "", "0"])
        writer.writerow(["008", "b.png", "benign", "1", "0.75", "nan", "12"])
    rows = read_per_image(str(path))
    assert rows[0]["id"] == "007" and rows[0]["class_name"] == "normal"
    assert rows[0]["lesion"] == 0 and isinstance(rows[0]["lesion"], int)
    assert rows[0]["lesion_prob"] == 0.25 and math.isnan(rows[0]["dice"]) and math.isnan(rows[1]["dice"])
    assert rows[1]["gt_area"] == 12


def test_bootstrap_ci_contains_estimate_is_deterministic_and_narrows():
    rng = np.random.default_rng(0)
    values = rng.uniform(size=40)
    lo, hi = bootstrap_ci(values, seed=3)
    assert lo < values.mean() < hi
    assert bootstrap_ci(values, seed=3) == (lo, hi)
    assert bootstrap_ci(values, seed=4) != (lo, hi)
    big_lo, big_hi = bootstrap_ci(rng.uniform(size=1000), seed=3)
    assert big_hi - big_lo < (hi - lo) / 2  # ~ 1 / sqrt(n)
    with_nan = np.concatenate([values, [math.nan] * 10])
    assert bootstrap_ci(with_nan, seed=3)[0] < np.nanmean(with_nan) < bootstrap_ci(with_nan, seed=3)[1]
    lo90, hi90 = bootstrap_ci(values, seed=3, level=0.9)
    assert lo <= lo90 and hi90 <= hi
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_summary_ci95_brackets_the_point_estimates():
    out = summarize(random_rows(seed=3), n_bootstrap=200)
    lo, hi = out["ci95"]["dice"]
    assert lo < out["segmentation"]["dice"] < hi
    lo, hi = out["ci95"]["accuracy"]
    assert lo < out["classification"]["accuracy"] < hi


def test_paired_comparison_identical_and_shifted():
    rng = np.random.default_rng(0)
    a = {f"c{i}": float(v) for i, v in enumerate(rng.uniform(size=30))}
    same = paired_comparison(a, dict(a))
    assert same["n"] == 30 and same["mean_diff"] == 0 and same["ci95"] == [0, 0]
    assert math.isnan(same["wilcoxon_p"]) or same["wilcoxon_p"] == 1
    b = {k: v + 0.05 + float(rng.normal(0, 0.01)) for k, v in a.items()}
    b["extra"] = 1.0  # not in a: ignored
    b["c0"] = math.nan  # not finite: ignored
    shifted = paired_comparison(a, b)
    assert shifted["n"] == 29
    assert shifted["mean_diff"] == pytest.approx(shifted["mean_b"] - shifted["mean_a"])
    assert shifted["mean_diff"] == pytest.approx(0.05, abs=0.01)
    assert shifted["wilcoxon_p"] < 1e-4
    assert 0 < shifted["ci95"][0] < shifted["mean_diff"] < shifted["ci95"][1]
    assert math.isnan(paired_comparison({"x": 1.0}, {"x": 2.0})["wilcoxon_p"])


def test_aggregate_folds_matches_numpy():
    folds = [summarize(random_rows(n=60, seed=s), n_bootstrap=10) for s in range(3)]
    agg = aggregate_folds(folds)
    assert agg["n_folds"] == 3
    for path in (
        ("classification", "accuracy"),
        ("segmentation", "dice"),
        ("classification_3class", "per_class", "benign", "f1"),
        ("segmentation_all_images", "dice_all"),
        ("n_images",),
    ):
        values = []
        for fold in folds:
            node = fold
            for key in path:
                node = node[key]
            values.append(node)
        mean, std = agg["mean"], agg["std"]
        for key in path:
            mean, std = mean[key], std[key]
        assert mean == pytest.approx(np.mean(values))
        assert std == pytest.approx(np.std(values, ddof=1))
    assert agg["confusion_matrix"] == np.sum([f["classification"]["confusion_matrix"] for f in folds], axis=0).tolist()
    assert "ci95" not in agg["mean"] and "conventions" not in agg["mean"]
    assert "confusion_matrix" not in agg["mean"]["classification"]
    single = aggregate_folds(folds[:1])
    assert single["std"]["classification"]["accuracy"] == 0
    assert single["mean"]["classification"]["accuracy"] == folds[0]["classification"]["accuracy"]


def test_boundary_metrics_average_over_lesion_images_and_millimetres_only_when_given():
    rows = [
        seg_row(1000, 900, 0.8, hd95=4.0, asd=1.0),
        seg_row(500, 0, 0.0, hd95=100.0, asd=100.0),  # missed: the image diagonal
        seg_row(0, 40, class_name="normal", hd95=math.nan, asd=math.nan),
    ]
    out = summarize(rows, n_bootstrap=10)["segmentation"]
    assert out["hd95"] == pytest.approx(52.0) and out["asd"] == pytest.approx(50.5)
    assert "hd95_mm" not in out
    rows[0].update(hd95_mm=0.4, asd_mm=0.1)
    rows[1].update(hd95_mm=10.0, asd_mm=10.0)
    rows[2].update(hd95_mm=math.nan, asd_mm=math.nan)
    out = summarize(rows, n_bootstrap=10)["segmentation"]
    assert out["hd95_mm"] == pytest.approx(5.2) and out["asd_mm"] == pytest.approx(5.05)


def test_gate_splits_the_lost_dice_into_gate_and_segmentation_and_datasets_are_summarised_apart():
    def row(dataset: str, lesion: int, called: int, dice: float, ungated: float) -> dict:
        return {
            "id": f"{dataset}{lesion}{called}{dice}",
            "dataset": dataset,
            "class_name": "benign" if lesion else "normal",
            "lesion": lesion,
            "target": lesion,
            "pred_class": called,
            "lesion_pred": called,
            "lesion_prob": 0.9 if called else 0.1,
            "gt_area": 100 * lesion,
            "pred_area": 80 if called else 0,
            **{m: (dice if m == "dice" else 0.5) if lesion else math.nan for m in ("dice", "iou")},
            "dice_ungated": ungated if lesion else math.nan,
        }

    rows = [
        row("a", 1, 1, 0.8, 0.8),
        row("a", 1, 0, 0.0, 0.6),  # a lesion called normal: the gate emptied a mask of Dice 0.6
        row("a", 0, 0, math.nan, math.nan),
        row("b", 1, 1, 0.4, 0.4),
        row("b", 0, 1, math.nan, math.nan),
    ]
    summary = summarize(rows, n_bootstrap=10)
    gate = summary["gate"]
    assert gate["dice"] == pytest.approx(0.4) and gate["dice_ungated"] == pytest.approx(0.6)
    assert gate["lost_to_gate"] == pytest.approx(0.2) and gate["lost_to_segmentation"] == pytest.approx(0.4)
    assert gate["sensitivity"] == pytest.approx(2 / 3) and gate["dice_called_lesion"] == pytest.approx(0.6)
    by_dataset = summary["by_dataset"]
    assert set(by_dataset) == {"a", "b"} and by_dataset["a"]["n_images"] == 3
    assert by_dataset["a"]["gate"]["lost_to_gate"] == pytest.approx(0.3)
    assert by_dataset["b"]["classification"]["accuracy"] == pytest.approx(0.5)
    assert "by_dataset" not in summarize([r for r in rows if r["dataset"] == "a"], n_bootstrap=10)
