"""Binary classification metrics of the paper's table 3, from weighted confusion counts.

Every metric is written as a function of the four confusion counts so that one code path serves
the point estimate (unit weights), the bootstrap (integer weights per resample) and the jackknife
(zero weight for the left-out patient): see :mod:`htct.evaluate.bootstrap`.

Undefined values are NaN, consistently (scikit-learn's ``zero_division=np.nan``):

- sensitivity: no positive scans; specificity: no negative scans;
- PPV: no positive calls; NPV: no negative calls;
- F1 (positive class): no positive scans and no positive calls;
- macro-F1: when the F1 of either class is undefined (scikit-learn would then average the defined
  one only; we prefer NaN to a "macro" mean of a single class);
- AUC: no positive or no negative scans;
- accuracy: no scans (total weight 0).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

METRICS: Final[tuple[str, ...]] = (
    "accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "macro_f1",
    "auc",
)
"""Metric names, in the order of the paper's table 3 (plus PPV/NPV/F1/AUC)."""


def _ratio(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray[np.float64]:
    """numerator / denominator, NaN where the denominator is 0 (no warning)."""
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def metrics_from_counts(
    tp: ArrayLike, fp: ArrayLike, tn: ArrayLike, fn: ArrayLike
) -> dict[str, NDArray[np.float64]]:
    """Threshold metrics from (weighted) confusion counts of any matching shape.

    Args:
        tp: true positives (HT scans called HT).
        fp: false positives.
        tn: true negatives.
        fn: false negatives.

    Returns:
        ``accuracy, sensitivity, specificity, ppv, npv, f1, macro_f1`` as float arrays of the
        counts' shape, NaN where undefined (see the module docstring).
    """
    tp, fp, tn, fn = (np.asarray(c, dtype=np.float64) for c in (tp, fp, tn, fn))
    f1_positive = _ratio(2 * tp, 2 * tp + fp + fn)
    f1_negative = _ratio(2 * tn, 2 * tn + fn + fp)
    return {
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": f1_positive,
        # NaN propagates: macro-F1 is undefined when one class's F1 is.
        "macro_f1": (f1_positive + f1_negative) / 2,
    }


def _as_binary(y: ArrayLike, name: str) -> NDArray[np.bool_]:
    array = np.asarray(y)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 (or booleans)")
    return array.astype(bool)


def confusion_counts(y_true: ArrayLike, y_call: ArrayLike) -> tuple[int, int, int, int]:
    """Confusion counts of binary calls.

    Args:
        y_true: 0/1 truth per scan (1 = haemorrhagic transformation).
        y_call: 0/1 call per scan.

    Returns:
        ``(tp, fp, tn, fn)``.
    """
    truth, call = _as_binary(y_true, "y_true"), _as_binary(y_call, "y_call")
    if truth.shape != call.shape:
        raise ValueError(f"y_true and y_call differ in length: {truth.size} vs {call.size}")
    return (
        int(np.sum(truth & call)),
        int(np.sum(~truth & call)),
        int(np.sum(~truth & ~call)),
        int(np.sum(truth & ~call)),
    )


def _metric(name: str, y_true: ArrayLike, y_call: ArrayLike) -> float:
    return float(metrics_from_counts(*confusion_counts(y_true, y_call))[name])


def accuracy(y_true: ArrayLike, y_call: ArrayLike) -> float:
    """Share of scans called correctly."""
    return _metric("accuracy", y_true, y_call)


def sensitivity(y_true: ArrayLike, y_call: ArrayLike) -> float:
    """Recall of the HT class: TP / (TP + FN); NaN without HT scans."""
    return _metric("sensitivity", y_true, y_call)


def specificity(y_true: ArrayLike, y_call: ArrayLike) -> float:
    """Recall of the non-HT class: TN / (TN + FP); NaN without non-HT scans."""
    return _metric("specificity", y_true, y_call)


def ppv(y_true: ArrayLike, y_call: ArrayLike) -> float:
    """Positive predictive value (precision): TP / (TP + FP); NaN when nothing is called HT."""
    return _metric("ppv", y_true, y_call)


def npv(y_true: ArrayLike, y_call: ArrayLike) -> float:
    """Negative predictive value: TN / (TN + FN); NaN when everything is called HT."""
    return _metric("npv", y_true, y_call)


def f1(y_true: ArrayLike, y_call: ArrayLike) -> float:
    """F1 of the HT class: 2TP / (2TP + FP + FN)."""
    return _metric("f1", y_true, y_call)


def macro_f1(y_true: ArrayLike, y_call: ArrayLike) -> float:
    """Mean of the F1 of the HT class and the F1 of the non-HT class."""
    return _metric("macro_f1", y_true, y_call)


def auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic, ties counted 1/2.

    AUC = P(score of an HT scan > score of a non-HT scan) + P(tie) / 2, computed from midranks in
    O(n log n). Higher scores mean HT.

    Args:
        y_true: 0/1 truth per scan.
        score: predicted probability (or any score) per scan.

    Returns:
        The AUC, NaN when either class is absent.
    """
    from scipy.stats import rankdata

    truth = _as_binary(y_true, "y_true")
    score = np.asarray(score, dtype=np.float64)
    if score.shape != truth.shape:
        raise ValueError(f"y_true and score differ in length: {truth.size} vs {score.size}")
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = rankdata(score)[truth].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(y_true: ArrayLike, score: ArrayLike, threshold: float) -> dict[str, float]:
    """All metrics of one rater: calls are ``score >= threshold``, AUC from the score.

    Args:
        y_true: 0/1 truth per scan.
        score: predicted HT probability per scan.
        threshold: decision threshold (chosen on validation patients for models, 0.5 for readers).

    Returns:
        Dict keyed by :data:`METRICS`, values as fractions (not percent).

    Example:
        >>> import numpy as np
        >>> y = np.r_[np.ones(20), np.zeros(11)]
        >>> m = binary_metrics(y, np.ones(31), 0.5)  # calls every scan HT
        >>> round(100 * m["accuracy"], 2), round(100 * m["macro_f1"], 2)
        (64.52, 39.22)
    """
    score = np.asarray(score, dtype=np.float64)
    calls = score >= threshold
    out = {
        name: float(value) for name, value in metrics_from_counts(*confusion_counts(y_true, calls)).items()
    }
    out["auc"] = auc(y_true, score)
    return out
