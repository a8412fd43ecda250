"""Pure numpy metrics (no detectron2): confusion matrices, IoU, end-point error."""
from typing import Dict

import numpy as np

__all__ = ["confusion_matrix", "iou_from_confusion", "endpoint_error_sum"]


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_value: int = 255) -> np.ndarray:
    """``[C, C]`` int64 counts, row = ground-truth class, column = predicted class.

    Pixels whose ground truth is ``ignore_value`` are skipped. Raises ``ValueError`` on shape
    mismatch or labels outside ``[0, num_classes)``.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    keep = gt != ignore_value
    g, p = gt[keep].astype(np.int64), pred[keep].astype(np.int64)
    for name, a in (("ground-truth", g), ("predicted", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} label {int(a.max())} outside [0, {num_classes})")
    return np.bincount(g * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_from_confusion(conf: np.ndarray) -> Dict[str, object]:
    """Per-class IoU ``tp / (tp + fp + fn)`` (NaN for classes absent from both), mIoU, pixel acc."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    total = conf.sum()
    return {
        "iou": iou,
        "mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
    }


def endpoint_error_sum(pred: np.ndarray, target: np.ndarray, weight: np.ndarray):
    """Sum of ``||pred - target||_2`` over pixels with ``weight > 0`` and their count.

    ``pred``, ``target``: ``[2, H, W]``; ``weight``: ``[H, W]``.
    """
    mask = weight > 0
    err = np.sqrt(((pred - target) ** 2).sum(0))[mask]
    return float(err.sum()), int(mask.sum())
