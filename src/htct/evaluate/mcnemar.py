"""McNemar's test for two raters' paired binary calls on the same scans.

By default the 2x2 table is of **correctness** (rater A right/wrong x rater B right/wrong), so
the test compares the two raters' accuracies; ``compare="call"`` tables the HT calls themselves
(compares how often each calls HT). statsmodels computes it: the exact binomial test when fewer
than 25 scans are discordant, otherwise the chi-square statistic with continuity correction
``(|b - c| - 1)^2 / (b + c)``.

:func:`clustered_mcnemar_test` is the patient-level version for several scans per patient
(Durkalski et al., Stat Med 2003;22:2417): with ``b_k, c_k`` the discordant scans of patient k
and ``n_k`` their scans, ``X^2 = (sum_k (b_k - c_k) / n_k)^2 / sum_k ((b_k - c_k) / n_k)^2`` on 1 df.
Each patient weighs the same; with one scan per patient it is McNemar's statistic, and the exact
or continuity-corrected McNemar test of :func:`mcnemar_test` is then used. No Python package
implements it (the R package clust.bin.pair does), hence the few lines here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

EXACT_BELOW = 25
"""Discordant pairs below which the exact binomial test is used."""


@dataclass(frozen=True)
class McNemarResult:
    """Result of :func:`mcnemar_test`.

    Attributes:
        table: 2x2 counts, rows rater A (1, 0), columns rater B (1, 0), where 1 = correct (or HT).
        a_only: scans where only A is correct (or only A calls HT), ``table[0, 1]``.
        b_only: scans where only B is, ``table[1, 0]``.
        statistic: chi-square statistic, or for the exact test the smaller discordant count.
        p_value: two-sided p-value (1.0 when there is no discordant scan).
        method: ``"exact"``, ``"chi2-cc"`` or (clustered) ``"durkalski"``.
    """

    table: NDArray[np.int64]
    a_only: int
    b_only: int
    statistic: float
    p_value: float
    method: str


def discordance_table(indicator_a: ArrayLike, indicator_b: ArrayLike) -> NDArray[np.int64]:
    """2x2 table of two paired 0/1 indicators, rows A = (1, 0), columns B = (1, 0)."""
    a = np.asarray(indicator_a).astype(bool)
    b = np.asarray(indicator_b).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"paired indicators differ in length: {a.size} vs {b.size}")
    return np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]], dtype=np.int64)


def _result(table: NDArray[np.int64], statistic: float, p_value: float, method: str) -> McNemarResult:
    return McNemarResult(
        table=table,
        a_only=int(table[0, 1]),
        b_only=int(table[1, 0]),
        statistic=statistic,
        p_value=p_value,
        method=method,
    )


def _indicators(
    y_true: ArrayLike, call_a: ArrayLike, call_b: ArrayLike, compare: str
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """The paired indicators McNemar tables: correctness (``"correct"``) or the calls (``"call"``)."""
    a = np.asarray(call_a).astype(bool)
    b = np.asarray(call_b).astype(bool)
    if compare == "correct":
        truth = np.asarray(y_true).astype(bool)
        return a == truth, b == truth
    if compare != "call":
        raise ValueError(f"compare must be 'correct' or 'call', got {compare!r}")
    return a, b


def mcnemar_test(
    y_true: ArrayLike,
    call_a: ArrayLike,
    call_b: ArrayLike,
    compare: Literal["correct", "call"] = "correct",
) -> McNemarResult:
    """McNemar's test of two raters' binary calls on the same scans.

    Args:
        y_true: 0/1 truth per scan (used when ``compare="correct"``).
        call_a: 0/1 HT call of rater A per scan.
        call_b: 0/1 HT call of rater B per scan.
        compare: ``"correct"`` tables correctness (accuracy comparison); ``"call"`` tables calls.

    Returns:
        A :class:`McNemarResult`.
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = _indicators(y_true, call_a, call_b, compare)
    table = discordance_table(a, b)
    discordant = int(table[0, 1] + table[1, 0])
    exact = discordant < EXACT_BELOW
    if discordant == 0:
        # statsmodels returns NaN for 0/0; no discordant scan means no evidence of a difference.
        statistic, p_value = (0.0, 1.0)
    else:
        result = mcnemar(table, exact=exact, correction=True)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return _result(table, statistic, p_value, "exact" if exact else "chi2-cc")


def clustered_mcnemar_test(
    y_true: ArrayLike,
    call_a: ArrayLike,
    call_b: ArrayLike,
    clusters: ArrayLike,
    compare: Literal["correct", "call"] = "correct",
) -> McNemarResult:
    """Patient-level McNemar test (Durkalski 2003) of two raters' calls on the same scans.

    Args:
        y_true, call_a, call_b, compare: as for :func:`mcnemar_test`.
        clusters: patient of each scan.

    Returns:
        A :class:`McNemarResult` whose table and discordant counts are over scans; the statistic
        and p-value are Durkalski's (method ``"durkalski"``), or McNemar's when every patient has
        one scan.
    """
    from scipy.stats import chi2

    codes = np.unique(np.asarray(clusters), return_inverse=True)[1].reshape(-1)
    a, b = _indicators(y_true, call_a, call_b, compare)
    if not (codes.size == a.size == b.size):
        raise ValueError(f"clusters, call_a and call_b differ in length: {codes.size}, {a.size}, {b.size}")
    scans_per_patient = np.bincount(codes)
    if scans_per_patient.max() == 1:
        return mcnemar_test(y_true, call_a, call_b, compare)
    table = discordance_table(a, b)
    difference = np.bincount(codes, weights=(a & ~b).astype(float) - (~a & b).astype(float))
    share = difference / scans_per_patient
    denominator = float(np.sum(share**2))
    if denominator == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic = float(np.sum(share) ** 2 / denominator)
        p_value = float(chi2.sf(statistic, 1))
    return _result(table, statistic, p_value, "durkalski")
