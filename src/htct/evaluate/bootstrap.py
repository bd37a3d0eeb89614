"""Patient-level bootstrap confidence intervals for all raters at once, vectorised.

Patients (not scans) are resampled with replacement, since scans of one patient are correlated;
every scan of a drawn patient enters the resample as often as the patient was drawn. A resample is
therefore a row of integer **scan weights**, and every metric is a function of weighted sums:

- confusion counts of all raters in all resamples are one matrix product
  ``weights [B, n_scans] @ indicators [n_scans, 1 + 2 * n_raters]``;
- the AUC sorts each rater's scores once, sums the weights of positives and negatives within each
  tied score group (``np.add.reduceat``) and counts, with cumulative sums, the negative weight
  below each group: the Mann-Whitney statistic with ties counted 1/2.

The weights are integers held in float64, so confusion counts are exact and the threshold metrics
equal a per-resample scikit-learn loop bit for bit (AUC to rounding); ``benchmarks/bench_bootstrap.py``
checks this and times both. The same draws serve every rater, so differences between raters
within a resample are paired. The same machinery with 0/1 weights gives the leave-one-patient-out
jackknife used for the BCa acceleration.

We write this instead of calling :func:`scipy.stats.bootstrap` because that function resamples
observations of one statistic at a time: here the unit is the patient (several scans), all 11
raters must share the draws, and the weighted form is about 100x faster than a resampling loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

from htct.evaluate.metrics import METRICS, metrics_from_counts

CIMethod = Literal["percentile", "bca"]


def patient_codes(patient_ids: ArrayLike) -> tuple[NDArray[np.intp], NDArray]:
    """Integer code per scan for its patient.

    Args:
        patient_ids: patient ID per scan (several scans per patient allowed).

    Returns:
        ``(codes, patients)``: ``codes[i]`` indexes ``patients`` (the sorted unique IDs), so the
        bootstrap draws depend only on the set of patients and the seed, not on the scan order.
    """
    patients, codes = np.unique(np.asarray(patient_ids), return_inverse=True)
    return codes.reshape(-1), patients


def bootstrap_patient_draws(n_patients: int, n_bootstrap: int = 2000, seed: int = 2026) -> NDArray[np.int64]:
    """Patients drawn with replacement, one row per resample.

    Args:
        n_patients: number of patients.
        n_bootstrap: number of resamples B.
        seed: seed of the :class:`numpy.random.Generator` (PCG64).

    Returns:
        int64 array ``[B, n_patients]`` of patient codes.
    """
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_patients, size=(n_bootstrap, n_patients), dtype=np.int64)


def draws_to_counts(draws: NDArray[np.integer], n_patients: int) -> NDArray[np.int64]:
    """How often each patient was drawn in each resample (multinomial counts).

    Args:
        draws: ``[B, k]`` patient codes from :func:`bootstrap_patient_draws`.
        n_patients: number of patients.

    Returns:
        int64 array ``[B, n_patients]``; each row sums to ``k``.
    """
    n_resamples = draws.shape[0]
    # One bincount over row-offset codes instead of B calls.
    offset = draws + n_patients * np.arange(n_resamples)[:, None]
    return np.bincount(offset.ravel(), minlength=n_resamples * n_patients).reshape(n_resamples, n_patients)


def scan_weights(patient_counts: NDArray[np.integer], codes: NDArray[np.integer]) -> NDArray[np.float64]:
    """Expand per-patient counts to per-scan weights: a patient's scans share its count.

    Args:
        patient_counts: ``[B, n_patients]`` counts.
        codes: patient code per scan (:func:`patient_codes`).

    Returns:
        float64 ``[B, n_scans]`` integer-valued weights.
    """
    return np.asarray(patient_counts, dtype=np.float64)[:, codes]


def jackknife_weights(codes: NDArray[np.integer], n_patients: int) -> NDArray[np.float64]:
    """Leave-one-patient-out weights: row ``j`` has 0 for patient ``j``'s scans, 1 elsewhere.

    Args:
        codes: patient code per scan.
        n_patients: number of patients.

    Returns:
        float64 ``[n_patients, n_scans]``.
    """
    return (np.arange(n_patients)[:, None] != np.asarray(codes)[None, :]).astype(np.float64)


def weighted_auc(y_true: ArrayLike, scores: ArrayLike, weights: ArrayLike) -> NDArray[np.float64]:
    """Mann-Whitney AUC (ties 1/2) of every rater under every row of scan weights.

    Args:
        y_true: 0/1 truth per scan, ``[n_scans]``.
        scores: ``[n_scans, n_raters]`` scores (higher = HT).
        weights: ``[K, n_scans]`` non-negative scan weights.

    Returns:
        ``[K, n_raters]`` AUCs, NaN where a row has no positive or no negative weight.
    """
    truth = np.asarray(y_true, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    out = np.empty((weights.shape[0], scores.shape[1]))
    for r in range(scores.shape[1]):
        order = np.argsort(scores[:, r], kind="stable")
        sorted_score = scores[order, r]
        group_start = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
        w = weights[:, order]
        positive = truth[order]
        pos = np.add.reduceat(w * positive, group_start, axis=1)
        neg = np.add.reduceat(w * (1.0 - positive), group_start, axis=1)
        neg_below = np.cumsum(neg, axis=1) - neg
        # Twice the Mann-Whitney sum is an integer for integer weights: divide once, at the end.
        twice_u = np.sum(pos * (2.0 * neg_below + neg), axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        auc = np.full(weights.shape[0], np.nan)
        np.divide(twice_u, 2.0 * pairs, out=auc, where=pairs > 0)
        out[:, r] = auc
    return out


def weighted_metrics(
    y_true: ArrayLike, scores: ArrayLike, thresholds: ArrayLike, weights: ArrayLike
) -> dict[str, NDArray[np.float64]]:
    """All metrics of :data:`~htct.evaluate.metrics.METRICS` for every rater and weight row.

    Args:
        y_true: 0/1 truth per scan, ``[n_scans]``.
        scores: ``[n_scans, n_raters]`` scores; a rater calls HT when ``score >= threshold``.
        thresholds: ``[n_raters]`` decision thresholds.
        weights: ``[K, n_scans]`` scan weights (``np.ones((1, n_scans))`` gives the point estimate).

    Returns:
        Dict metric -> ``[K, n_raters]`` values (fractions), NaN where undefined.
    """
    truth = np.asarray(y_true, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n_raters = scores.shape[1]
    calls = (scores >= np.asarray(thresholds, dtype=np.float64)[None, :]).astype(np.float64)
    indicators = np.column_stack([truth, calls * truth[:, None], calls])
    sums = weights @ indicators
    positives = sums[:, :1]
    tp = sums[:, 1 : 1 + n_raters]
    called = sums[:, 1 + n_raters :]
    total = weights.sum(axis=1, keepdims=True)
    fp = called - tp
    fn = positives - tp
    tn = total - positives - fp
    out = metrics_from_counts(tp, fp, tn, fn)
    out["auc"] = weighted_auc(truth, scores, weights)
    return out


def percentile_ci(replicates: NDArray[np.float64], alpha: float = 0.05) -> tuple[NDArray, NDArray]:
    """Percentile interval over resamples (axis 0), ignoring resamples where the metric is NaN.

    Args:
        replicates: ``[B, ...]`` bootstrap values.
        alpha: 1 - confidence level.

    Returns:
        ``(low, high)`` arrays of the trailing shape; NaN where every replicate is NaN.
    """
    replicates = np.asarray(replicates, dtype=np.float64)
    low = np.full(replicates.shape[1:], np.nan)
    high = np.full(replicates.shape[1:], np.nan)
    defined = ~np.all(np.isnan(replicates), axis=0)
    if defined.any():
        low[defined], high[defined] = np.nanquantile(
            replicates[:, defined], [alpha / 2, 1 - alpha / 2], axis=0
        )
    return low, high


def percentile_p_value(replicates: ArrayLike, null: float = 0.0, side: str = "two-sided") -> float:
    """The p-value that agrees with the percentile interval: the smallest alpha whose interval excludes
    ``null``.

    The percentile interval's bounds are quantiles of the replicates (numpy's linear interpolation,
    as in :func:`percentile_ci`). Inverting that same quantile function gives the levels at which the
    lower bound rises above ``null`` (``q_low``) and the upper bound falls below it (``1 - q_high``):
    the two-sided p is ``2 * min(q_low, 1 - q_high)``, the one-sided p (alternative: above ``null``)
    is ``q_low``. So "the 1 - alpha interval lies above ``null``" holds exactly when the one-sided p is
    below alpha / 2, and "it excludes ``null``" exactly when the two-sided p is below alpha; the
    usual share of replicates beyond ``null`` can disagree with the interval at the edge.

    Args:
        replicates: bootstrap values of one statistic (NaN replicates are left out).
        null: the value tested.
        side: ``"two-sided"`` or ``"greater"`` (alternative: the statistic is above ``null``).

    Returns:
        The p-value in [0, 1]; NaN when no replicate is defined.
    """
    values = np.sort(np.asarray(replicates, dtype=np.float64).ravel())
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan")
    last = values.size - 1
    if last == 0:  # one replicate: every quantile is that value
        q_low, q_high = float(values[0] <= null), float(values[0] < null)
        below, above = q_low, 1.0 - q_high
    else:
        # Positions (0..last) on the sorted replicates; counted from the nearer end to keep the digits.
        k = int(np.searchsorted(values, null, side="right"))  # values[:k] <= null
        if k == 0:
            below = 0.0
        elif k == values.size:
            below = float(last)
        else:  # the largest position whose interpolated quantile is still <= null
            below = k - 1 + (null - values[k - 1]) / (values[k] - values[k - 1])
        m = int(np.searchsorted(values, null, side="left"))  # values[:m] < null
        if m == 0:
            above = float(last)
        elif m == values.size:
            above = 0.0
        else:  # positions above the smallest one whose quantile is >= null
            above = (last - m) + (values[m] - null) / (values[m] - values[m - 1])
        below, above = below / last, above / last
    if side == "greater":
        return float(below)
    if side != "two-sided":
        raise ValueError(f"side must be 'two-sided' or 'greater', got {side!r}")
    return float(min(1.0, 2 * min(below, above)))


def bca_ci(
    replicates: NDArray[np.float64],
    estimate: NDArray[np.float64],
    jackknife: NDArray[np.float64],
    alpha: float = 0.05,
) -> tuple[NDArray, NDArray]:
    """Bias-corrected and accelerated interval (Efron 1987), column by column.

    The bias correction ``z0`` counts ties as 1/2, as :func:`scipy.stats.bootstrap` does, so a
    degenerate bootstrap (every replicate equal to the estimate) gives ``z0 = 0`` and the
    degenerate interval instead of an infinite correction. The acceleration comes from the
    leave-one-patient-out jackknife; it is 0 when the jackknife values do not vary. NaN
    replicates/jackknife values (metric undefined) are dropped.

    Args:
        replicates: ``[B, m]`` bootstrap values.
        estimate: ``[m]`` point estimates on the full sample.
        jackknife: ``[n_patients, m]`` leave-one-patient-out values.
        alpha: 1 - confidence level.

    Returns:
        ``(low, high)``, each ``[m]``; NaN where the estimate is NaN, no replicate is defined, or
        the estimate lies outside every replicate (``z0`` infinite).
    """
    replicates = np.asarray(replicates, dtype=np.float64)
    estimate = np.atleast_1d(np.asarray(estimate, dtype=np.float64))
    jackknife = np.asarray(jackknife, dtype=np.float64)
    low = np.full(estimate.shape, np.nan)
    high = np.full(estimate.shape, np.nan)
    z_levels = ndtri(np.array([alpha / 2, 1 - alpha / 2]))
    for j in range(estimate.size):
        boot = replicates[:, j][~np.isnan(replicates[:, j])]
        if np.isnan(estimate[j]) or boot.size == 0:
            continue
        share_below = (np.sum(boot < estimate[j]) + np.sum(boot <= estimate[j])) / (2 * boot.size)
        z0 = ndtri(share_below)
        if not np.isfinite(z0):
            continue
        jack = jackknife[:, j][~np.isnan(jackknife[:, j])]
        deviation = jack.mean() - jack if jack.size else np.zeros(1)
        spread = np.sum(deviation**2)
        acceleration = np.sum(deviation**3) / (6 * spread**1.5) if spread > 0 else 0.0
        adjusted = ndtr(z0 + (z0 + z_levels) / (1 - acceleration * (z0 + z_levels)))
        low[j], high[j] = np.quantile(boot, adjusted)
    return low, high


@dataclass
class BootstrapResult:
    """Point estimates and bootstrap replicates of every metric for every rater.

    Attributes:
        raters: rater names, the column order of every array.
        estimate: metric -> ``[n_raters]`` values on the full sample.
        replicates: metric -> ``[B, n_raters]`` values in each resample (shared draws).
        jackknife: metric -> ``[n_patients, n_raters]`` leave-one-patient-out values (BCa only).
        draws: ``[B, n_patients]`` the patient codes drawn.
        patients: the patient IDs the codes index.
    """

    raters: list[str]
    estimate: dict[str, NDArray[np.float64]]
    replicates: dict[str, NDArray[np.float64]]
    jackknife: dict[str, NDArray[np.float64]] | None
    draws: NDArray[np.int64]
    patients: NDArray = field(repr=False)

    def ci(self, method: CIMethod = "percentile", alpha: float = 0.05) -> pd.DataFrame:
        """Long table of intervals: ``rater, metric, value, low, high, n_undefined`` (fractions).

        ``n_undefined`` counts the resamples in which the metric was undefined (e.g. PPV when the
        rater called no drawn scan HT); they are left out of the interval, out of ``len(draws)``.

        Args:
            method: ``"percentile"`` or ``"bca"`` (needs ``jackknife``).
            alpha: 1 - confidence level.
        """
        if method not in ("percentile", "bca"):
            raise ValueError(f"ci_method must be 'percentile' or 'bca', got {method!r}")
        if method == "bca" and self.jackknife is None:
            raise ValueError("BCa intervals need the jackknife: run bootstrap_metrics(..., jackknife=True)")
        rows = []
        for metric, estimate in self.estimate.items():
            if method == "percentile":
                low, high = percentile_ci(self.replicates[metric], alpha)
            else:
                low, high = bca_ci(self.replicates[metric], estimate, self.jackknife[metric], alpha)
            undefined = np.isnan(self.replicates[metric]).sum(axis=0)
            for r, rater in enumerate(self.raters):
                rows.append((rater, metric, estimate[r], low[r], high[r], int(undefined[r])))
        return pd.DataFrame(rows, columns=["rater", "metric", "value", "low", "high", "n_undefined"])

    def difference_ci(self, reference: str, alpha: float = 0.05) -> pd.DataFrame:
        """Paired differences ``rater - reference`` for every metric, with percentile intervals.

        The two-sided bootstrap p-value is ``2 * min(share of resamples with difference <= 0,
        share with difference >= 0)``, capped at 1.

        Args:
            reference: the rater subtracted (e.g. ``"ctnet"``).
            alpha: 1 - confidence level.

        Returns:
            Columns ``rater, reference, metric, difference, low, high, p_bootstrap``.
        """
        ref = self.raters.index(reference)
        rows = []
        for metric, estimate in self.estimate.items():
            diff = self.replicates[metric] - self.replicates[metric][:, [ref]]
            low, high = percentile_ci(diff, alpha)
            defined = ~np.isnan(diff)
            n_defined = defined.sum(axis=0)
            at_most = np.sum((diff <= 0) & defined, axis=0)
            at_least = np.sum((diff >= 0) & defined, axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                p_value = np.minimum(1.0, 2 * np.minimum(at_most, at_least) / n_defined)
            for r, rater in enumerate(self.raters):
                if r != ref:
                    rows.append(
                        (rater, reference, metric, estimate[r] - estimate[ref], low[r], high[r], p_value[r])
                    )
        columns = ["rater", "reference", "metric", "difference", "low", "high", "p_bootstrap"]
        return pd.DataFrame(rows, columns=columns)


def _stack_raters(
    scores: Mapping[str, ArrayLike], thresholds: Mapping[str, float], n_scans: int
) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
    raters = list(scores)
    missing = [r for r in raters if r not in thresholds]
    if missing:
        raise ValueError(f"no threshold for rater(s) {missing}")
    matrix = np.column_stack([np.asarray(scores[r], dtype=np.float64) for r in raters])
    if matrix.shape[0] != n_scans:
        raise ValueError(f"scores have {matrix.shape[0]} rows but y_true has {n_scans} scans")
    if np.isnan(matrix).any():
        raise ValueError("scores contain NaN: every rater must score every scan")
    return raters, matrix, np.array([thresholds[r] for r in raters], dtype=np.float64)


def bootstrap_metrics(
    y_true: ArrayLike,
    patient_ids: ArrayLike,
    scores: Mapping[str, ArrayLike],
    thresholds: Mapping[str, float],
    n_bootstrap: int = 2000,
    seed: int = 2026,
    jackknife: bool = False,
    metrics: Sequence[str] = METRICS,
) -> BootstrapResult:
    """Patient-level bootstrap of every metric for every rater, with shared draws.

    Args:
        y_true: 0/1 truth per scan.
        patient_ids: patient ID per scan.
        scores: rater name -> score per scan (same scan order as ``y_true``).
        thresholds: rater name -> threshold (HT call when ``score >= threshold``).
        n_bootstrap: number of resamples.
        seed: seed of the generator; with the same seed and patients, separate calls draw the
            same resamples.
        jackknife: also compute leave-one-patient-out values (for BCa intervals).
        metrics: which metrics to keep.

    Returns:
        A :class:`BootstrapResult`.

    Example:
        >>> import numpy as np
        >>> y = np.array([1, 1, 0, 0, 1, 0])
        >>> result = bootstrap_metrics(y, ["a", "a", "b", "b", "c", "c"], {"m": y * 0.9}, {"m": 0.5}, 200)
        >>> float(result.estimate["accuracy"][0])
        1.0
    """
    truth = np.asarray(y_true)
    if not np.isin(truth, (0, 1)).all():
        raise ValueError("y_true must hold only 0/1")
    codes, patients = patient_codes(patient_ids)
    if codes.size != truth.size:
        raise ValueError(f"patient_ids has {codes.size} entries but y_true has {truth.size}")
    raters, score_matrix, threshold_array = _stack_raters(scores, thresholds, truth.size)
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; known: {METRICS}")

    draws = bootstrap_patient_draws(patients.size, n_bootstrap, seed)
    weights = scan_weights(draws_to_counts(draws, patients.size), codes)

    def compute(w: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
        values = weighted_metrics(truth, score_matrix, threshold_array, w)
        return {m: values[m] for m in metrics}

    estimate = {m: v[0] for m, v in compute(np.ones((1, truth.size))).items()}
    return BootstrapResult(
        raters=raters,
        estimate=estimate,
        replicates=compute(weights),
        jackknife=compute(jackknife_weights(codes, patients.size)) if jackknife else None,
        draws=draws,
        patients=patients,
    )
