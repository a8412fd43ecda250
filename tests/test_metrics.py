"""Pure metrics against brute-force loops and hand-computed cases."""
import numpy as np
import pytest

from dspf_parser.evaluation.metrics import confusion_matrix, endpoint_error_sum, iou_from_confusion


def test_confusion_matrix_matches_a_loop():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, (20, 30))
    gt[0, :5] = 255
    pred = rng.integers(0, 5, (20, 30))
    ref = np.zeros((5, 5), np.int64)
    for g, p in zip(gt.ravel(), pred.ravel()):
        if g != 255:
            ref[g, p] += 1
    assert np.array_equal(confusion_matrix(gt, pred, 5), ref)


def test_iou_hand_computed():
    gt = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1]])
    s = iou_from_confusion(confusion_matrix(gt, pred, 3))
    # class 0: tp 1, union 2 -> 0.5; class 1: tp 2, union 3 -> 2/3; class 2 absent -> NaN.
    assert s["iou"][0] == pytest.approx(0.5) and s["iou"][1] == pytest.approx(2 / 3) and np.isnan(s["iou"][2])
    assert s["mIoU"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert s["pixel_accuracy"] == pytest.approx(0.75)


def test_bad_labels_and_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.zeros((2, 2), int), np.full((2, 2), 7), 3)


def test_endpoint_error_hand_computed():
    pred = np.zeros((2, 1, 3))
    target = np.array([[[3.0, 0.0, 1.0]], [[4.0, 0.0, 0.0]]])
    total, count = endpoint_error_sum(pred, target, np.array([[1, 0, 1]]))
    assert (total, count) == (6.0, 2)
