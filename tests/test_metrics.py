"""Segmentation metrics against confusion matrices computed by hand, and AUROC by hand."""

import numpy as np
import pytest

from semflow.metrics import auroc, confusion_matrix, iou_per_class, mean_iou, pixel_accuracy


def test_hand_computed_example():
    target = np.array([[0, 0, 1, 1], [2, 2, 2, 9]])  # 9 = ignore
    prediction = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    matrix = confusion_matrix(prediction, target, num_classes=3, ignore_id=9)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0]]
    # class 0: TP 1, FP 1 (a 2 predicted 0), FN 1 → 1/3; class 1: TP 2, FP 1 → 2/3; class 2: TP 2, FN 1 → 2/3
    assert np.allclose(iou_per_class(matrix), [1 / 3, 2 / 3, 2 / 3])
    assert mean_iou(matrix) == pytest.approx(5 / 9)
    assert pixel_accuracy(matrix) == pytest.approx(5 / 7)


def test_predicting_the_ignore_id_is_a_miss_and_absent_classes_are_skipped():
    target = np.array([0, 0, 1, 1])
    prediction = np.array([0, 9, 1, 1])
    matrix = confusion_matrix(prediction, target, num_classes=3, ignore_id=9)
    assert matrix.tolist() == [[1, 0, 0, 1], [0, 2, 0, 0], [0, 0, 0, 0]]
    iou = iou_per_class(matrix)
    assert iou[0] == pytest.approx(0.5) and iou[1] == 1.0 and np.isnan(iou[2])
    assert mean_iou(matrix) == pytest.approx(0.75)
    assert pixel_accuracy(matrix) == pytest.approx(0.75)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="target's resolution"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((3, 2)), 2)


def test_auroc_by_hand():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool)) == 0.75
    assert auroc(np.array([1.0, 2.0]), np.array([False, True])) == 1.0
    assert auroc(np.array([0.5, 0.5, 0.5]), np.array([True, False, False])) == 0.5
    assert np.isnan(auroc(np.ones(3), np.zeros(3, bool)))


def test_fid_and_kid_on_known_cases():
    """FID of a set against itself shifted by c is exactly |c|² (same covariance); KID is about 0 for two samples of
    one distribution and clearly positive for a shifted one."""
    from training.fid import fid, kid

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    shift = np.array([1.0, -2.0, 0, 0, 0, 0, 0, 0])
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fid(a, a + shift) == pytest.approx(5.0, rel=1e-6)
    assert 0 < fid(a, b) < 0.5
    same, _ = kid(a, b, subsets=20, subset_size=200)
    shifted, _ = kid(a, b + shift, subsets=20, subset_size=200)
    assert abs(same) < 0.05 and shifted > 1.0
