"""Decision thresholds chosen on validation scans (never on test scans)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_curve


def youden_threshold(y_true: np.ndarray, p_ht: np.ndarray) -> dict[str, float]:
    """Threshold maximising Youden's J (sensitivity + specificity - 1) on validation scans.

    Args:
        y_true: 0/1 labels.
        p_ht: predicted probabilities.

    Returns:
        threshold, youden_j, sensitivity, specificity (threshold 0.5 and NaNs when only one class).
    """
    if len(np.unique(y_true)) < 2:
        return {"threshold": 0.5, "youden_j": math.nan, "sensitivity": math.nan, "specificity": math.nan}
    fpr, tpr, thresholds = roc_curve(y_true, p_ht)
    finite = np.isfinite(thresholds)  # the first threshold is +inf (nobody called positive)
    j = np.where(finite, tpr - fpr, -np.inf)
    best = int(np.argmax(j))
    return {
        "threshold": float(thresholds[best]),
        "youden_j": float(j[best]),
        "sensitivity": float(tpr[best]),
        "specificity": float(1 - fpr[best]),
    }
