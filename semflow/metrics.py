"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU, pixel accuracy (ignore id excluded)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(
    prediction: np.ndarray, target: np.ndarray, num_classes: int, ignore_id: int | None = None
) -> np.ndarray:
    """Counts of (target class, predicted class) pairs.

    Pixels whose target is `ignore_id` (or not a class) are skipped. Predictions that are not a class (e.g. the
    ignore id) are wrong for their target and land in an extra last column, so every row sums to the number of
    labelled pixels of its class.

    Args:
        prediction, target: Integer arrays of the same shape.
    Returns:
        (num_classes, num_classes + 1) int64 matrix; rows = target, columns = prediction (+ "no class").
    """
    prediction, target = np.asarray(prediction), np.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape; compare them at "
                         f"the target's resolution")
    target = target.astype(np.int64).ravel()
    prediction = prediction.astype(np.int64).ravel()
    keep = (target >= 0) & (target < num_classes)
    if ignore_id is not None:
        keep &= target != ignore_id
    target, prediction = target[keep], prediction[keep]
    prediction = np.where((prediction >= 0) & (prediction < num_classes), prediction, num_classes)
    counts = np.bincount(target * (num_classes + 1) + prediction, minlength=num_classes * (num_classes + 1))
    return counts.reshape(num_classes, num_classes + 1)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """IoU of each class = TP / (TP + FP + FN); NaN for a class absent from both target and prediction."""
    num_classes = matrix.shape[0]
    true_positive = np.diag(matrix[:, :num_classes]).astype(np.float64)
    union = matrix.sum(axis=1) + matrix[:, :num_classes].sum(axis=0) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    """Mean of the per-class IoUs over the classes present in target or prediction."""
    iou = iou_per_class(matrix)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Correct pixels / labelled pixels."""
    total = matrix.sum()
    return float(np.trace(matrix[:, : matrix.shape[0]]) / total) if total else float("nan")


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for finding the `positives` (Mann–Whitney U; ties count one half).

    Args:
        scores: Any shape; higher means "more likely positive".
        positives: Boolean, the same shape.
    Returns:
        AUROC in [0, 1]; NaN when there are no positives or no negatives.
    """
    scores, positives = np.asarray(scores, np.float64).ravel(), np.asarray(positives, bool).ravel()
    count_pos, count_neg = int(positives.sum()), int((~positives).sum())
    if count_pos == 0 or count_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    # average the ranks of tied scores
    unique, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks = average[np.searchsorted(unique, scores)]
    return float((ranks[positives].sum() - count_pos * (count_pos + 1) / 2.0) / (count_pos * count_neg))
