"""DeLong's AUC variance, confidence interval and paired test (pROC's ``ci.auc`` / ``roc.test``).

The fast midrank algorithm of Sun & Xu (IEEE Signal Process. Lett. 2014;21:1389), O(n log n):
the structural components (placement values) come from midranks of the positives, the negatives
and all scans. Scores are oriented so that **higher means HT** (pROC ``direction = "<"``); unlike
pROC's ``roc()`` nothing is flipped automatically, which would bias the AUC upwards.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri
from scipy.stats import norm, rankdata


def delong_covariance(
    y_true: ArrayLike, scores: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """AUCs and their DeLong covariance for one or more scores of the same scans.

    Args:
        y_true: 0/1 truth per scan.
        scores: ``[n_scans]`` or ``[n_scores, n_scans]`` scores (higher = positive).

    Returns:
        ``(auc [k], covariance [k, k])``. The variance uses the unbiased (n - 1) sample variances
        of the placement values, as pROC and Sun & Xu do.

    Raises:
        ValueError: when a class has fewer than 2 scans (the variance needs 2).
    """
    truth = np.asarray(y_true).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if scores.shape[1] != truth.size:
        raise ValueError(f"scores have {scores.shape[1]} scans but y_true has {truth.size}")
    positives, negatives = scores[:, truth], scores[:, ~truth]
    m, n = positives.shape[1], negatives.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positive and 2 negative scans, got {m} and {n}")
    rank_pos = rankdata(positives, axis=1)
    rank_neg = rankdata(negatives, axis=1)
    rank_all = rankdata(np.concatenate([positives, negatives], axis=1), axis=1)
    auc = (rank_all[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    # Placement of each positive among the negatives (V10) and of each negative among positives (V01).
    v10 = (rank_all[:, :m] - rank_pos) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_neg) / m
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return auc, covariance


def delong_ci(y_true: ArrayLike, score: ArrayLike, alpha: float = 0.05) -> tuple[float, float, float]:
    """AUC with DeLong's confidence interval (pROC ``ci.auc(method = "delong")``).

    The normal interval ``auc +/- z * sd`` is clipped to [0, 1], as pROC does.

    Args:
        y_true: 0/1 truth per scan.
        score: score per scan (higher = positive).
        alpha: 1 - confidence level.

    Returns:
        ``(auc, low, high)``.

    Example:
        >>> [round(v, 4) for v in delong_ci([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.8, 0.9])]
        [0.8889, 0.5809, 1.0]
    """
    auc, covariance = delong_covariance(y_true, score)
    half_width = -ndtri(alpha / 2) * np.sqrt(covariance[0, 0])
    return float(auc[0]), float(max(0.0, auc[0] - half_width)), float(min(1.0, auc[0] + half_width))


def delong_test(y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike) -> tuple[float, float]:
    """Paired DeLong test of two correlated AUCs (pROC ``roc.test``'s default), two-sided.

    Args:
        y_true: 0/1 truth per scan.
        score_a: first score per scan.
        score_b: second score of the same scans.

    Returns:
        ``(z, p)`` with ``z = (auc_a - auc_b) / sd(auc_a - auc_b)``; both NaN when the difference
        has zero variance (e.g. two perfect classifiers).
    """
    auc, cov = delong_covariance(y_true, np.vstack([score_a, score_b]))
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if not variance > 0:
        return float("nan"), float("nan")
    z = (auc[0] - auc[1]) / np.sqrt(variance)
    return float(z), float(2 * norm.sf(abs(z)))
