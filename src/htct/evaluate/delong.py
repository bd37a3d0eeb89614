"""DeLong's AUC variance, confidence interval and paired test (pROC's ``ci.auc`` / ``roc.test``).

The fast midrank algorithm of Sun & Xu (IEEE Signal Process. Lett. 2014;21:1389), O(n log n):
the structural components (placement values) come from midranks of the positives, the negatives
and all scans. Scores are oriented so that **higher means HT** (pROC ``direction = "<"``); unlike
pROC's ``roc()`` nothing is flipped automatically, which would bias the AUC upwards.

With ``clusters`` (the patient of each scan) the variance is Obuchowski's (Biometrics
1997;53:567) clustered estimator: the placement values are summed per patient before their
(co)variances are taken, and a within-patient cross term is added, so that a patient's 1-3
correlated scans count as one independent unit. With one scan per patient it equals DeLong's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri
from scipy.stats import norm, rankdata


def delong_covariance(
    y_true: ArrayLike, scores: ArrayLike, clusters: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """AUCs and their DeLong covariance for one or more scores of the same scans.

    Args:
        y_true: 0/1 truth per scan.
        scores: ``[n_scans]`` or ``[n_scores, n_scans]`` scores (higher = positive).
        clusters: the patient (cluster) of each scan for Obuchowski's clustered covariance
            (:func:`clustered_covariance`); None: scans are independent (DeLong).

    Returns:
        ``(auc [k], covariance [k, k])``. The variance uses the unbiased (n - 1) sample variances
        of the placement values, as pROC and Sun & Xu do.

    Raises:
        ValueError: when a class has fewer than 2 scans (the variance needs 2), or, clustered,
            fewer than 2 patients.
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
    if clusters is not None:
        cluster_ids = np.asarray(clusters)
        if cluster_ids.size != truth.size:
            raise ValueError(f"clusters has {cluster_ids.size} entries but y_true has {truth.size}")
        return auc, clustered_covariance(auc, v10, v01, cluster_ids[truth], cluster_ids[~truth])
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return auc, covariance


def clustered_covariance(
    auc: NDArray[np.float64],
    v10: NDArray[np.float64],
    v01: NDArray[np.float64],
    positive_clusters: ArrayLike,
    negative_clusters: ArrayLike,
) -> NDArray[np.float64]:
    """Obuchowski's (1997) clustered covariance of AUCs from the placement values.

    With ``X_i`` the sum of the positives' placements ``V10`` in cluster i, ``Y_i`` that of the
    negatives' ``V01``, ``m_i, n_i`` the cluster's positive and negative counts, M, N the totals,
    I the clusters and I10, I01 those with a positive / a negative:
    ``S10 = I10 / ((I10 - 1) M) sum_i (X_i - m_i A)(X_i - m_i A)'``,
    ``S01 = I01 / ((I01 - 1) N) sum_i (Y_i - n_i A)(Y_i - n_i A)'``,
    ``S11 = I / (I - 1) sum_i (X_i - m_i A)(Y_i - n_i A)'`` and
    ``cov = S10 / M + S01 / N + (S11 + S11') / (M N)``.

    Args:
        auc: ``[k]`` AUCs.
        v10: ``[k, M]`` placement of each positive among the negatives.
        v01: ``[k, N]`` placement of each negative among the positives.
        positive_clusters: cluster of each positive.
        negative_clusters: cluster of each negative.

    Returns:
        ``[k, k]`` covariance matrix.
    """
    clusters, codes = np.unique(np.concatenate([positive_clusters, negative_clusters]), return_inverse=True)
    n_pos = v10.shape[1]
    pos_codes, neg_codes = codes[:n_pos], codes[n_pos:]
    n_clusters = clusters.size
    m_i = np.bincount(pos_codes, minlength=n_clusters).astype(np.float64)
    n_i = np.bincount(neg_codes, minlength=n_clusters).astype(np.float64)
    with_pos, with_neg = int(np.count_nonzero(m_i)), int(np.count_nonzero(n_i))
    if min(with_pos, with_neg) < 2:
        raise ValueError(
            f"the clustered variance needs >= 2 patients with each class, got {with_pos} and {with_neg}"
        )
    x = np.stack([np.bincount(pos_codes, weights=row, minlength=n_clusters) for row in v10])
    y = np.stack([np.bincount(neg_codes, weights=row, minlength=n_clusters) for row in v01])
    dx = x - m_i[None, :] * auc[:, None]
    dy = y - n_i[None, :] * auc[:, None]
    big_m, big_n = m_i.sum(), n_i.sum()
    s10 = with_pos / ((with_pos - 1) * big_m) * dx @ dx.T
    s01 = with_neg / ((with_neg - 1) * big_n) * dy @ dy.T
    s11 = n_clusters / (n_clusters - 1) * dx @ dy.T
    return s10 / big_m + s01 / big_n + (s11 + s11.T) / (big_m * big_n)


def delong_ci(
    y_true: ArrayLike, score: ArrayLike, alpha: float = 0.05, clusters: ArrayLike | None = None
) -> tuple[float, float, float]:
    """AUC with DeLong's confidence interval (pROC ``ci.auc(method = "delong")``).

    The normal interval ``auc +/- z * sd`` is clipped to [0, 1], as pROC does.

    Args:
        y_true: 0/1 truth per scan.
        score: score per scan (higher = positive).
        alpha: 1 - confidence level.
        clusters: patient per scan for the clustered (Obuchowski 1997) variance; None: DeLong's.

    Returns:
        ``(auc, low, high)``.

    Example:
        >>> [round(v, 4) for v in delong_ci([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.8, 0.9])]
        [0.8889, 0.5809, 1.0]
    """
    auc, covariance = delong_covariance(y_true, score, clusters)
    half_width = -ndtri(alpha / 2) * np.sqrt(covariance[0, 0])
    return float(auc[0]), float(max(0.0, auc[0] - half_width)), float(min(1.0, auc[0] + half_width))


def delong_test(
    y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, clusters: ArrayLike | None = None
) -> tuple[float, float]:
    """Paired DeLong test of two correlated AUCs (pROC ``roc.test``'s default), two-sided.

    Args:
        y_true: 0/1 truth per scan.
        score_a: first score per scan.
        score_b: second score of the same scans.
        clusters: patient per scan for the clustered (Obuchowski 1997) covariance; None: DeLong's.

    Returns:
        ``(z, p)`` with ``z = (auc_a - auc_b) / sd(auc_a - auc_b)``; both NaN when the difference
        has zero variance (e.g. two perfect classifiers).
    """
    auc, cov = delong_covariance(y_true, np.vstack([score_a, score_b]), clusters)
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if not variance > 0:
        return float("nan"), float("nan")
    z = (auc[0] - auc[1]) / np.sqrt(variance)
    return float(z), float(2 * norm.sf(abs(z)))
