"""Golden-value tests of the dense metrics in kae_utils.evaluation.metrics: IoU, pixel accuracy, depth, normals."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kae_utils.evaluation.metrics import (
    NORMAL_ANGLE_THRESHOLDS,
    depth_metrics,
    iou_per_class,
    mean_iou,
    normal_metrics,
    pixel_accuracy,
)

# one 2 x 3 image, 4 classes (class 3 is in neither map)
TARGET = torch.tensor([[[0, 0, 1], [1, 2, 2]]])
PRED = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
# class 0: target {(0,0), (0,1)}, pred {(0,0), (1,2)}         -> 1 shared / 3 in either = 1/3
# class 1: target {(0,2), (1,0)}, pred {(0,1), (0,2), (1,0)}  -> 2 / 3
# class 2: target {(1,1), (1,2)}, pred {(1,1)}                -> 1 / 2
# class 3: nowhere                                            -> nan, left out of the mean
# mean IoU = (1/3 + 2/3 + 1/2) / 3 = 0.5; pixel accuracy: (0,0), (0,2), (1,0), (1,1) right = 4/6


def logits(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Logits ``(N, C, H, W)`` whose argmax over C is ``labels``."""
    g = torch.Generator().manual_seed(0)
    one_hot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
    return one_hot * 5 + torch.rand(one_hot.shape, generator=g)


# --------------------------------------------------------------------------------- segmentation


def test_iou_per_class_golden():
    iou = iou_per_class(PRED, TARGET, num_classes=4)
    assert iou.dtype == torch.float64 and iou.shape == (4,)
    torch.testing.assert_close(iou[:3], torch.tensor([1 / 3, 2 / 3, 1 / 2], dtype=torch.float64))
    assert math.isnan(iou[3].item())


def test_mean_iou_and_pixel_accuracy_golden():
    assert mean_iou(PRED, TARGET, num_classes=4) == pytest.approx(0.5)
    assert pixel_accuracy(PRED, TARGET) == pytest.approx(4 / 6)
    assert isinstance(mean_iou(PRED, TARGET, 4), float) and isinstance(pixel_accuracy(PRED, TARGET), float)
    assert mean_iou(TARGET, TARGET, 4) == 1.0 and pixel_accuracy(TARGET, TARGET) == 1.0


def test_logits_give_the_same_scores_as_labels():
    scores = logits(PRED, 4)
    torch.testing.assert_close(iou_per_class(scores, TARGET, 4), iou_per_class(PRED, TARGET, 4), equal_nan=True)
    assert pixel_accuracy(scores, TARGET) == pixel_accuracy(PRED, TARGET)


def test_ignore_index_drops_pixels():
    target = TARGET.clone()
    target[0, 0, 1] = 255  # the pixel predicted 1 where the truth was 0
    # class 0: target {(0,0)}, pred {(0,0), (1,2)} -> 1/2; class 1: {(0,2), (1,0)} both -> 1; class 2: 1/2
    iou = iou_per_class(PRED, target, 4, ignore_index=255)
    torch.testing.assert_close(iou[:3], torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64))
    assert mean_iou(PRED, target, 4, ignore_index=255) == pytest.approx(2 / 3)
    assert pixel_accuracy(PRED, target, ignore_index=255) == pytest.approx(4 / 5)


def test_class_only_in_the_prediction_counts_as_zero():
    pred = PRED.clone()
    pred[0, 1, 2] = 3  # was a wrong 0; now a wrong 3
    # class 0: target {(0,0), (0,1)}, pred {(0,0)} -> 1/2; class 3: pred {(1,2)}, target {} -> 0
    iou = iou_per_class(pred, TARGET, 4)
    torch.testing.assert_close(iou, torch.tensor([0.5, 2 / 3, 0.5, 0.0], dtype=torch.float64))
    assert mean_iou(pred, TARGET, 4) == pytest.approx((0.5 + 2 / 3 + 0.5 + 0.0) / 4)


def test_batches_pool_pixels():
    # two images: the second is all right (one class-1 pixel); pooled, class 1 gets 3 shared / 4 in either
    pred = torch.cat([PRED, torch.ones(1, 2, 3, dtype=torch.long)])
    target = torch.cat([TARGET, torch.ones(1, 2, 3, dtype=torch.long)])
    iou = iou_per_class(pred, target, 4)
    assert iou[1].item() == pytest.approx((2 + 6) / (3 + 6))
    assert pixel_accuracy(pred, target) == pytest.approx((4 + 6) / 12)


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "message"),
    [
        (PRED[:, :1], TARGET, {}, "differ in shape"),
        (torch.zeros(1, 4, 2, 2), TARGET, {}, "differ in shape"),
        (torch.zeros(2, 3), TARGET, {}, r"logits \(N, C, H, W\) or labels"),
        (PRED + 3, TARGET, {}, r"predictions must lie in \[0, 4\)"),
        (PRED, TARGET - 1, {}, r"targets must lie in \[0, 4\)"),
        (PRED, torch.full_like(TARGET, 255), {"ignore_index": 255}, "no pixels"),
        (PRED[:, :0], TARGET[:, :0], {}, "no pixels"),
    ],
)
def test_segmentation_errors(pred, target, kwargs, message):
    with pytest.raises(ValueError, match=message):
        iou_per_class(pred, target, 4, **kwargs)


def test_segmentation_error_cases_of_the_other_functions():
    with pytest.raises(ValueError, match="num_classes"):
        mean_iou(PRED, TARGET, 0)
    with pytest.raises(ValueError, match="differ in shape"):
        pixel_accuracy(PRED[:, :1], TARGET)
    with pytest.raises(ValueError, match="no pixels"):
        pixel_accuracy(PRED, torch.full_like(TARGET, -1), ignore_index=-1)


# ---------------------------------------------------------------------------------------- depth

# four pixels; the last has no ground truth (target 0)
D_TARGET = torch.tensor([1.0, 2.0, 4.0, 0.0]).reshape(1, 1, 2, 2)
D_PRED = torch.tensor([1.1, 1.5, 4.0, 3.0]).reshape(1, 1, 2, 2)
# valid: errors 0.1, -0.5, 0 -> rmse = sqrt((0.01 + 0.25 + 0) / 3) = sqrt(0.08667) = 0.29439
# abs_rel = (0.1 / 1 + 0.5 / 2 + 0 / 4) / 3 = 0.35 / 3 = 0.11667
# max(p/t, t/p) = 1.1, 4/3 = 1.333, 1.0 -> < 1.25: 2 of 3; < 1.5625: 3 of 3; < 1.953: 3 of 3


def test_depth_metrics_golden():
    m = depth_metrics(D_PRED, D_TARGET)
    assert list(m) == ["rmse", "abs_rel", "delta1", "delta2", "delta3"]
    assert m["rmse"] == pytest.approx(math.sqrt(0.26 / 3))
    assert m["abs_rel"] == pytest.approx(0.35 / 3)
    assert m["delta1"] == pytest.approx(2 / 3)
    assert m["delta2"] == 1.0 and m["delta3"] == 1.0
    assert all(isinstance(v, float) for v in m.values())


def test_depth_metrics_mask():
    mask = torch.tensor([True, True, False, True]).reshape(1, 1, 2, 2)
    # valid: the first two -> rmse = sqrt((0.01 + 0.25) / 2) = sqrt(0.13); abs_rel = 0.35 / 2; delta1 = 1/2
    m = depth_metrics(D_PRED, D_TARGET, mask=mask)
    assert m["rmse"] == pytest.approx(math.sqrt(0.13))
    assert m["abs_rel"] == pytest.approx(0.175)
    assert m["delta1"] == pytest.approx(0.5) and m["delta2"] == 1.0
    # a mask without the channel axis broadcasts
    assert depth_metrics(D_PRED, D_TARGET, mask=mask[:, 0]) == m


def test_depth_metrics_non_positive_predictions_never_count():
    # pred -1 for target 1: error 2 -> rmse 2, abs_rel 2; no ratio threshold is met
    m = depth_metrics(torch.tensor([-1.0]), torch.tensor([1.0]))
    assert m == {"rmse": 2.0, "abs_rel": 2.0, "delta1": 0.0, "delta2": 0.0, "delta3": 0.0}
    assert depth_metrics(D_TARGET, D_TARGET)["rmse"] == 0.0


def test_depth_metrics_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        depth_metrics(D_PRED[..., :1], D_TARGET)
    with pytest.raises(ValueError, match="no valid pixels"):
        depth_metrics(D_PRED, torch.zeros_like(D_TARGET))
    with pytest.raises(ValueError, match="no valid pixels"):
        depth_metrics(D_PRED, D_TARGET, mask=torch.zeros_like(D_TARGET, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        depth_metrics(D_PRED, D_TARGET, mask=torch.ones_like(D_TARGET))
    with pytest.raises(ValueError, match="broadcast"):
        depth_metrics(D_PRED, D_TARGET, mask=torch.ones(3, dtype=torch.bool))


# -------------------------------------------------------------------------------------- normals


def normals_image(vectors: list[tuple[float, float, float]]) -> torch.Tensor:
    """``(1, 3, 1, W)`` from a list of W vectors."""
    return torch.tensor(vectors, dtype=torch.float32).T.reshape(1, 3, 1, -1)


S10, C10 = math.sin(math.radians(10)), math.cos(math.radians(10))
N_TARGET = normals_image([(0, 0, 1)] * 4)
N_PRED = normals_image([(0, 0, 2), (1, 0, 1), (0, 1, 0), (0, S10, C10)])
# angles to +z after normalising: 0, 45, 90, 10 degrees
# mean = 145 / 4 = 36.25; median of 0, 10, 45, 90 = (10 + 45) / 2 = 27.5
# below 11.25: 0 and 10 -> 1/2; below 22.5: 1/2; below 30: 1/2


def test_normal_metrics_golden():
    m = normal_metrics(N_PRED, N_TARGET)
    assert list(m) == ["mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"]
    assert len(NORMAL_ANGLE_THRESHOLDS) == 3
    assert m["mean_angle"] == pytest.approx(36.25, abs=1e-4)
    assert m["median_angle"] == pytest.approx(27.5, abs=1e-4)
    assert m["within_11.25"] == 0.5 and m["within_22.5"] == 0.5 and m["within_30"] == 0.5


def test_normal_metrics_mask_and_scaling():
    # without the 90-degree pixel: 0, 45, 10 -> mean 55/3, median 10, 2 of 3 below every threshold
    mask = torch.tensor([True, True, False, True]).reshape(1, 1, 4)
    m = normal_metrics(N_PRED, N_TARGET * 3, mask=mask)  # the target's length does not matter
    assert m["mean_angle"] == pytest.approx(55 / 3, abs=1e-4)
    assert m["median_angle"] == pytest.approx(10.0, abs=1e-4)
    assert m["within_11.25"] == pytest.approx(2 / 3) and m["within_30"] == pytest.approx(2 / 3)
    assert normal_metrics(N_PRED, N_TARGET, mask=mask[:, None]) == normal_metrics(N_PRED, N_TARGET, mask=mask)
    # opposite vectors are 180 degrees apart; zero-length targets are left out
    target = normals_image([(0, 0, 1), (0, 0, 0)])
    m = normal_metrics(normals_image([(0, 0, -1), (1, 0, 0)]), target)
    assert m["mean_angle"] == pytest.approx(180.0, abs=1e-3) and m["within_30"] == 0.0


def test_normal_metrics_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        normal_metrics(N_PRED[..., :2], N_TARGET)
    with pytest.raises(ValueError, match=r"\(N, 3, \.\.\.\)"):
        normal_metrics(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 4))
    with pytest.raises(ValueError, match="no valid pixels"):
        normal_metrics(N_PRED, N_TARGET, mask=torch.zeros(1, 1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="no valid pixels"):
        normal_metrics(N_PRED, torch.zeros_like(N_TARGET))
