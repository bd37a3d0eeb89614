"""A model's ROC read at the clinicians' operating point, with patient-bootstrap intervals.

A model and clinicians compared at one fixed model threshold mix two things: how well the model
ranks scans and where its threshold happens to sit. Reading the model's ROC at the clinicians' mean
specificity (its sensitivity there) and at their mean sensitivity (its specificity there) compares
them at matched operating points, the usual way to set a standalone algorithm beside readers who
give binary calls.

The ROC is the empirical one, its vertices joined by straight lines (the operating points a
randomised mix of two neighbouring thresholds reaches). At a vertical step (several sensitivities at
one false-positive rate) the best point is taken.

Intervals: each patient-bootstrap resample (:mod:`htct.evaluate.bootstrap`, the evaluation's draws
for the same seed) recomputes the clinicians' mean sensitivity and specificity *and* the model's
ROC, so the interval carries the uncertainty of both sides. Percentile intervals; the p-value is
:func:`htct.evaluate.bootstrap.percentile_p_value`, so that it agrees with the interval.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from htct.evaluate.bootstrap import (
    bootstrap_patient_draws,
    draws_to_counts,
    patient_codes,
    percentile_ci,
    percentile_p_value,
    scan_weights,
    weighted_metrics,
)

OPERATING_POINT_COLUMNS = [
    "quantity",
    "matched_at",
    "estimate",
    "low",
    "high",
    "readers_mean",
    "readers_low",
    "readers_high",
    "difference",
    "difference_low",
    "difference_high",
    "p",
    "n_undefined",
]


def weighted_roc(
    y_true: ArrayLike, scores: ArrayLike, weights: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ROC vertices of one score under every row of scan weights.

    Args:
        y_true: 0/1 truth per scan.
        scores: score per scan (higher = HT).
        weights: ``[K, n_scans]`` non-negative scan weights.

    Returns:
        ``(fpr, tpr)``, each ``[K, G + 1]`` (G distinct scores, from the highest threshold down; the
        first column is the point (0, 0)); NaN rows where a weight row has no positive or negative.
    """
    truth = np.asarray(y_true, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    group_start = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    w = weights[:, order]
    tp = np.cumsum(np.add.reduceat(w * truth[order], group_start, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(w * (1.0 - truth[order]), group_start, axis=1), axis=1)
    zero = np.zeros((w.shape[0], 1))
    tp, fp = np.hstack([zero, tp]), np.hstack([zero, fp])
    with np.errstate(invalid="ignore", divide="ignore"):
        return fp / fp[:, -1:], tp / tp[:, -1:]


def sensitivity_at_fpr(fpr: NDArray[np.float64], tpr: NDArray[np.float64], target: float) -> float:
    """The ROC's sensitivity at a false-positive rate (linear between vertices, best at a step)."""
    if not (np.isfinite(target) and np.isfinite(fpr).all()):
        return np.nan
    i = int(np.searchsorted(fpr, target, side="right")) - 1  # last vertex with fpr <= target
    if fpr[i] == target or i == len(fpr) - 1:
        return float(tpr[i])
    share = (target - fpr[i]) / (fpr[i + 1] - fpr[i])
    return float(tpr[i] + share * (tpr[i + 1] - tpr[i]))


def fpr_at_sensitivity(fpr: NDArray[np.float64], tpr: NDArray[np.float64], target: float) -> float:
    """The ROC's smallest false-positive rate at a sensitivity (linear between vertices)."""
    if not (np.isfinite(target) and np.isfinite(tpr).all()):
        return np.nan
    i = min(int(np.searchsorted(tpr, target, side="left")), len(tpr) - 1)  # first vertex tpr >= target
    if tpr[i] <= target or i == 0:
        return float(fpr[i])
    share = (target - tpr[i - 1]) / (tpr[i] - tpr[i - 1])
    return float(fpr[i - 1] + share * (fpr[i] - fpr[i - 1]))


def _matched(
    fpr: NDArray, tpr: NDArray, readers_sensitivity: NDArray, readers_specificity: NDArray
) -> dict[str, NDArray[np.float64]]:
    """Per weight row: the model's sensitivity at the readers' specificity and specificity at their
    sensitivity, beside the readers' means (columns: model, readers' mean of the same quantity,
    readers' mean of the quantity matched)."""
    k = fpr.shape[0]
    sens = np.array([sensitivity_at_fpr(fpr[i], tpr[i], 1.0 - readers_specificity[i]) for i in range(k)])
    spec = np.array([1.0 - fpr_at_sensitivity(fpr[i], tpr[i], readers_sensitivity[i]) for i in range(k)])
    return {
        "sensitivity_at_reader_specificity": np.column_stack(
            [sens, readers_sensitivity, readers_specificity]
        ),
        "specificity_at_reader_sensitivity": np.column_stack(
            [spec, readers_specificity, readers_sensitivity]
        ),
    }


def matched_operating_points(
    y_true: ArrayLike,
    patient_ids: ArrayLike,
    model_scores: ArrayLike,
    reader_calls: Mapping[str, ArrayLike],
    n_bootstrap: int = 2000,
    seed: int = 2026,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The model's sensitivity at the readers' mean specificity and specificity at their mean
    sensitivity, each beside the readers' mean, with patient-bootstrap intervals.

    Args:
        y_true: 0/1 truth per scan.
        patient_ids: patient per scan (the resampling unit).
        model_scores: the model's score per scan (its ROC).
        reader_calls: reader -> 0/1 HT call per scan.
        n_bootstrap: resamples (the same draws as :func:`~htct.evaluate.bootstrap.bootstrap_metrics`
            for the same seed and patients).
        seed: bootstrap seed.
        alpha: 1 - confidence level.

    Returns:
        Two rows (``sensitivity_at_reader_specificity``, ``specificity_at_reader_sensitivity``)
        with :data:`OPERATING_POINT_COLUMNS`: the readers' mean the model is matched at
        (``matched_at``), the model's value there, the readers' mean, the difference
        model minus readers (fractions), each with its percentile interval, the difference's
        two-sided p, and the resamples left out (a quantity undefined there).
    """
    truth = np.asarray(y_true, dtype=np.float64)
    if not reader_calls:
        raise ValueError("matched operating points need at least one reader")
    calls = np.column_stack([np.asarray(c, dtype=np.float64) for c in reader_calls.values()])
    codes, patients = patient_codes(patient_ids)
    draws = bootstrap_patient_draws(patients.size, n_bootstrap, seed)
    weights = np.vstack(
        [np.ones((1, truth.size)), scan_weights(draws_to_counts(draws, patients.size), codes)]
    )
    readers = weighted_metrics(truth, calls, np.full(calls.shape[1], 0.5), weights)
    with np.errstate(invalid="ignore"):
        mean_sens = np.nanmean(readers["sensitivity"], axis=1)
        mean_spec = np.nanmean(readers["specificity"], axis=1)
    fpr, tpr = weighted_roc(truth, model_scores, weights)
    rows = []
    for quantity, values in _matched(fpr, tpr, mean_sens, mean_spec).items():
        point, replicates = values[0], values[1:]
        difference = replicates[:, 0] - replicates[:, 1]
        low, high = percentile_ci(replicates[:, :2], alpha)
        d_low, d_high = percentile_ci(difference[:, None], alpha)
        rows.append(
            {
                "quantity": quantity,
                "matched_at": point[2],
                "estimate": point[0],
                "low": low[0],
                "high": high[0],
                "readers_mean": point[1],
                "readers_low": low[1],
                "readers_high": high[1],
                "difference": point[0] - point[1],
                "difference_low": d_low[0],
                "difference_high": d_high[0],
                "p": percentile_p_value(difference, 0.0),
                "n_undefined": int(np.isnan(difference).sum()),
            }
        )
    return pd.DataFrame(rows, columns=OPERATING_POINT_COLUMNS)
