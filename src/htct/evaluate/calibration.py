"""Calibration of predicted HT probabilities and decision-curve net benefit.

Calibration slope and intercept follow the logistic recalibration framework (Cox 1958; Van Calster
et al., J Clin Epidemiol 2016;74:167):

- **slope**: ``b`` in ``logit P(y = 1) = a + b * logit(p)`` (ideal 1; < 1 means predictions too
  extreme, as with overfitting);
- **intercept**: calibration-in-the-large, ``a`` in ``logit P(y = 1) = a + 1 * logit(p)``, i.e.
  refitted with the slope fixed at 1 via an offset (ideal 0; > 0 means risks underestimated on
  average). This is *not* the intercept of the slope model above, which mixes in the slope.

Net benefit (Vickers & Elkin, Med Decis Making 2006;26:565) at threshold probability ``pt``:
``TP / n - FP / n * pt / (1 - pt)``; treating everyone gives ``prevalence - (1 - prevalence) *
pt / (1 - pt)`` and treating no one gives 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

PROBABILITY_CLIP = 1e-6
"""Probabilities are clipped to [1e-6, 1 - 1e-6] before the logit, so 0 and 1 stay finite."""


def _validated(y_true: ArrayLike, probability: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    truth = np.asarray(y_true, dtype=np.float64)
    prob = np.asarray(probability, dtype=np.float64)
    if truth.shape != prob.shape or truth.ndim != 1:
        raise ValueError(
            f"y_true and probability must be 1-D of equal length, got {truth.shape}, {prob.shape}"
        )
    if not np.isin(truth, (0, 1)).all():
        raise ValueError("y_true must hold only 0/1")
    if np.any((prob < 0) | (prob > 1)) or np.isnan(prob).any():
        raise ValueError("probabilities must lie in [0, 1]")
    return truth, prob


def calibration_table(
    y_true: ArrayLike,
    probability: ArrayLike,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> pd.DataFrame:
    """Reliability-diagram points: mean predicted vs observed HT rate per bin.

    The points are :func:`sklearn.calibration.calibration_curve`'s; the scan count per bin is
    added (same bin edges) for the histogram under a reliability diagram. Empty bins are dropped.

    Args:
        y_true: 0/1 truth per scan.
        probability: predicted HT probability per scan.
        n_bins: number of bins.
        strategy: ``"uniform"`` (equal width on [0, 1]) or ``"quantile"`` (equal counts).

    Returns:
        DataFrame ``bin_low, bin_high, mean_predicted, observed, n``.
    """
    from sklearn.calibration import calibration_curve

    truth, prob = _validated(y_true, probability)
    observed, mean_predicted = calibration_curve(truth, prob, n_bins=n_bins, strategy=strategy)
    # Same edges and bin assignment as sklearn's calibration_curve.
    if strategy == "quantile":
        edges = np.percentile(prob, np.linspace(0, 100, n_bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_ids = np.searchsorted(edges[1:-1], prob)
    counts = np.bincount(bin_ids, minlength=len(edges) - 1)
    used = np.flatnonzero(counts)
    return pd.DataFrame(
        {
            "bin_low": edges[used],
            "bin_high": edges[used + 1],
            "mean_predicted": mean_predicted,
            "observed": observed,
            "n": counts[used],
        }
    )


def brier_score(y_true: ArrayLike, probability: ArrayLike) -> float:
    """Mean squared difference between predicted probability and outcome (lower is better)."""
    from sklearn.metrics import brier_score_loss

    truth, prob = _validated(y_true, probability)
    return float(brier_score_loss(truth, prob))


@dataclass(frozen=True)
class Calibration:
    """Logistic recalibration of predicted probabilities (see the module docstring).

    Attributes:
        slope: calibration slope (ideal 1).
        intercept: calibration-in-the-large, slope fixed at 1 (ideal 0).
        brier: Brier score.
    """

    slope: float
    intercept: float
    brier: float


def calibration_slope_intercept(y_true: ArrayLike, probability: ArrayLike) -> Calibration:
    """Calibration slope, calibration-in-the-large and Brier score (statsmodels GLM, binomial).

    Args:
        y_true: 0/1 truth per scan.
        probability: predicted HT probability per scan.

    Returns:
        A :class:`Calibration`.
    """
    import statsmodels.api as sm

    truth, prob = _validated(y_true, probability)
    clipped = np.clip(prob, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    logit = np.log(clipped / (1 - clipped))
    family = sm.families.Binomial()
    slope_fit = sm.GLM(truth, sm.add_constant(logit, has_constant="add"), family=family).fit()
    intercept_fit = sm.GLM(truth, np.ones_like(logit), family=family, offset=logit).fit()
    return Calibration(
        slope=float(slope_fit.params[1]),
        intercept=float(intercept_fit.params[0]),
        brier=brier_score(truth, prob),
    )


def net_benefit(y_true: ArrayLike, probability: ArrayLike, thresholds: ArrayLike) -> NDArray[np.float64]:
    """Net benefit of treating scans with ``probability >= pt``, for each threshold ``pt``.

    Args:
        y_true: 0/1 truth per scan.
        probability: predicted HT probability per scan.
        thresholds: threshold probabilities in [0, 1).

    Returns:
        Net benefit per threshold.
    """
    truth, prob = _validated(y_true, probability)
    pt = np.asarray(thresholds, dtype=np.float64)
    if np.any((pt < 0) | (pt >= 1)):
        raise ValueError("threshold probabilities must lie in [0, 1)")
    treated = prob[None, :] >= pt[:, None]
    tp = (treated & (truth[None, :] == 1)).sum(axis=1)
    fp = (treated & (truth[None, :] == 0)).sum(axis=1)
    n = truth.size
    return tp / n - fp / n * pt / (1 - pt)


def net_benefit_treat_all(y_true: ArrayLike, thresholds: ArrayLike) -> NDArray[np.float64]:
    """Net benefit of treating every patient: ``prevalence - (1 - prevalence) * pt / (1 - pt)``."""
    truth = np.asarray(y_true, dtype=np.float64)
    pt = np.asarray(thresholds, dtype=np.float64)
    prevalence = truth.mean()
    return prevalence - (1 - prevalence) * pt / (1 - pt)


def decision_curve(
    y_true: ArrayLike,
    probabilities: Mapping[str, ArrayLike],
    thresholds: ArrayLike | None = None,
) -> pd.DataFrame:
    """Decision curves of several models plus treat-all and treat-none.

    Args:
        y_true: 0/1 truth per scan.
        probabilities: model name -> predicted HT probability per scan.
        thresholds: threshold probabilities; default 0.01 to 0.99 in steps of 0.01.

    Returns:
        Long DataFrame ``strategy, threshold, net_benefit`` with strategies the model names,
        ``"treat all"`` and ``"treat none"``.
    """
    pt = np.round(np.arange(1, 100) / 100, 2) if thresholds is None else np.asarray(thresholds, dtype=float)
    curves = {name: net_benefit(y_true, p, pt) for name, p in probabilities.items()}
    curves["treat all"] = net_benefit_treat_all(y_true, pt)
    curves["treat none"] = np.zeros_like(pt)
    return pd.concat(
        [pd.DataFrame({"strategy": name, "threshold": pt, "net_benefit": nb}) for name, nb in curves.items()],
        ignore_index=True,
    )
