"""Scores of a classifier from its confusion matrix: accuracy, per-class P/R/F1/IoU."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion(truth: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """An ``n x n`` confusion matrix (rows: true class, columns: predicted class)."""
    truth = np.asarray(truth, dtype=np.int64).ravel()
    pred = np.asarray(pred, dtype=np.int64).ravel()
    ok = (truth >= 0) & (truth < n) & (pred >= 0) & (pred < n)
    return np.bincount(truth[ok] * n + pred[ok], minlength=n * n).reshape(n, n)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def scores(cm: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Scores from a confusion matrix.

    Returns:
        ``accuracy`` (overall), ``samples``, ``per_class`` (precision, recall, f1, iou,
        support), ``classes`` and the ``confusion_matrix`` (rows true, columns predicted).
    """
    total = int(cm.sum())
    per_class = {}
    for i, name in enumerate(names):
        tp = float(cm[i, i])
        fp = float(cm[:, i].sum()) - tp
        fn = float(cm[i, :].sum()) - tp
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        per_class[name] = {
            "precision": p,
            "recall": r,
            "f1": _ratio(2 * p * r, p + r),
            "iou": _ratio(tp, tp + fp + fn),
            "support": int(cm[i, :].sum()),
        }
    return {
        "accuracy": _ratio(float(np.trace(cm)), total),
        "samples": total,
        "per_class": per_class,
        "classes": list(names),
        "confusion_matrix": cm.astype(int).tolist(),
    }
