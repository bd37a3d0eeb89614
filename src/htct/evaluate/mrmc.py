"""Multi-reader multi-case (MRMC) ROC analysis: Obuchowski–Rockette with Hillis' degrees of freedom.

Two designs:

- :func:`or_analysis`: several readers read every case in each of several treatments (modalities);
  are the treatments' reader-averaged AUCs equal? Obuchowski & Rockette (1995) with the
  jackknife covariance and Hillis' (2007, 2008) denominator degrees of freedom, for random readers
  and random cases (RRRC) and for fixed readers, random cases (FRRC).
- :func:`standalone_vs_readers`: a standalone algorithm (one fixed "reader" without reader
  variability) against readers who read the same cases, the design of CAD-vs-radiologists studies
  (RJafroc's ``StSignificanceTestingCadVsRad``, method ``1T-RRRC``): the single-treatment OR model of
  Hillis (2007, section 5.3) applied to the reader-minus-algorithm AUC differences, with readers and
  cases random. It gives the same F, degrees of freedom and p as a two-treatment OR analysis in
  which the algorithm's scores are copied to every reader (Kooi et al. 2016); the tests check this.

No maintained Python package implements these (the references are the R packages RJafroc and
MRMCaov and the Iowa OR-DBM MRMC program), so they are written here; ``tests/test_mrmc.py``
reproduces the published OR results of the Van Dyke data to their printed digits.

**The case unit is the independent sampling unit.** The jackknife leaves out one *cluster* at a
time: in the Van Dyke data a case, in the reader study here a patient with all of their scans, since
a patient contributes 1-3 correlated scans (a clustered jackknife; the AUC itself stays the
scan-level AUC the paper reports). With one scan per patient it is the usual case jackknife.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from htct.evaluate.bootstrap import jackknife_weights, patient_codes, weighted_auc


def jackknife_aucs(
    y_true: ArrayLike, scores: ArrayLike, clusters: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Empirical (Wilcoxon, ties 1/2) AUCs and their leave-one-cluster-out values.

    Args:
        y_true: 0/1 truth per scan (case).
        scores: ``[..., n_scans]`` scores, higher = positive (e.g. ``[T, R, n]`` for treatments x
            readers, or ``[n_raters, n]``).
        clusters: the independent unit of each scan (patient ID); None: every scan its own unit.

    Returns:
        ``(auc [...], jackknife [K, ...])`` with K the number of clusters, cluster order sorted.
    """
    truth = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    lead_shape = scores.shape[:-1]
    flat = scores.reshape(-1, scores.shape[-1]).T  # [n_scans, n_raters]
    if flat.shape[0] != truth.size:
        raise ValueError(f"scores have {flat.shape[0]} scans but y_true has {truth.size}")
    if clusters is None:
        clusters = np.arange(truth.size)
    codes, units = patient_codes(clusters)
    if codes.size != truth.size:
        raise ValueError(f"clusters has {codes.size} entries but y_true has {truth.size}")
    auc = weighted_auc(truth, flat, np.ones((1, truth.size)))[0]
    jack = weighted_auc(truth, flat, jackknife_weights(codes, units.size))
    return auc.reshape(lead_shape), jack.reshape((units.size, *lead_shape))


def jackknife_covariance(jackknife: NDArray[np.float64]) -> NDArray[np.float64]:
    """Jackknife covariance ``(K - 1) / K * sum_k (t_(k) - mean)(t_(k) - mean)'`` of K leave-outs.

    Args:
        jackknife: ``[K, m]`` leave-one-out values of m statistics.

    Returns:
        ``[m, m]`` covariance matrix.
    """
    jackknife = np.asarray(jackknife, dtype=np.float64)
    k = jackknife.shape[0]
    centred = jackknife - jackknife.mean(axis=0)
    return (k - 1) / k * centred.T @ centred


@dataclass(frozen=True)
class ORVariance:
    """The OR error (co)variances, averaged over the reader/treatment pairs they describe.

    Attributes:
        var: same reader, same treatment.
        cov1: same reader, different treatments.
        cov2: different readers, same treatment.
        cov3: different readers, different treatments.
    """

    var: float
    cov1: float
    cov2: float
    cov3: float


def or_variance_components(covariance: NDArray[np.float64], n_treatments: int, n_readers: int) -> ORVariance:
    """Average an AUC covariance matrix into Var, Cov1, Cov2, Cov3 (Obuchowski & Rockette 1995).

    Args:
        covariance: ``[T*R, T*R]`` covariance of the AUCs in treatment-major order.
        n_treatments: T.
        n_readers: R.

    Returns:
        An :class:`ORVariance` (Cov1 / Cov3 are NaN for a single treatment, Cov2 / Cov3 for one reader).
    """
    treatment = np.repeat(np.arange(n_treatments), n_readers)
    reader = np.tile(np.arange(n_readers), n_treatments)
    same_t = treatment[:, None] == treatment[None, :]
    same_r = reader[:, None] == reader[None, :]

    def mean(mask: NDArray[np.bool_]) -> float:
        return float(covariance[mask].mean()) if mask.any() else float("nan")

    return ORVariance(
        var=mean(same_t & same_r),
        cov1=mean(~same_t & same_r),
        cov2=mean(same_t & ~same_r),
        cov3=mean(~same_t & ~same_r),
    )


@dataclass(frozen=True)
class ORResult:
    """Obuchowski–Rockette analysis of a treatments x readers AUC table.

    Attributes:
        auc: ``[T, R]`` AUCs.
        variance: the jackknife error (co)variances.
        ms_t: treatment mean square.
        ms_tr: treatment-by-reader mean square.
        n_clusters: jackknife units (cases or patients).
        rrrc: one row: ``f, df1, df2, p`` (random readers and cases).
        frrc: one row: ``chi2, df, p`` (fixed readers, random cases).
        differences: per treatment pair ``i - j``: ``estimate``, RRRC ``rrrc_low/high, rrrc_df, rrrc_p``
            and FRRC ``frrc_low/high, frrc_p``.
        treatments: per treatment: reader-mean AUC, RRRC ``rrrc_low/high, rrrc_df`` (Hillis 2007
            single-treatment), FRRC ``frrc_low/high``.
    """

    auc: NDArray[np.float64]
    variance: ORVariance
    ms_t: float
    ms_tr: float
    n_clusters: int
    rrrc: pd.DataFrame
    frrc: pd.DataFrame
    differences: pd.DataFrame
    treatments: pd.DataFrame


def _t_interval(estimate: float, se: float, df: float, alpha: float) -> tuple[float, float, float]:
    """Two-sided t interval and p-value; an infinite df is the normal."""
    quantile = stats.t.ppf(1 - alpha / 2, df) if np.isfinite(df) else stats.norm.ppf(1 - alpha / 2)
    statistic = estimate / se if se > 0 else np.nan
    p = 2 * (stats.t.sf(abs(statistic), df) if np.isfinite(df) else stats.norm.sf(abs(statistic)))
    return estimate - quantile * se, estimate + quantile * se, float(p)


def _single_treatment(
    auc: NDArray[np.float64], covariance: NDArray[np.float64], alpha: float
) -> tuple[float, float, float, float, float, float]:
    """Hillis (2007) single-treatment RRRC and FRRC intervals of the reader-mean AUC.

    Returns:
        ``(mean, rrrc_low, rrrc_high, rrrc_df, frrc_low, frrc_high)``.
    """
    n_readers = auc.size
    mean = float(auc.mean())
    components = or_variance_components(covariance, 1, n_readers)
    cov2 = components.cov2 if n_readers > 1 else 0.0
    if n_readers > 1:
        ms_r = float(np.var(auc, ddof=1))
        denominator = ms_r + n_readers * max(cov2, 0.0)
        df = denominator**2 / (ms_r**2 / (n_readers - 1)) if ms_r > 0 else np.inf
        rrrc_low, rrrc_high, _ = _t_interval(mean, np.sqrt(denominator / n_readers), df, alpha)
    else:
        rrrc_low = rrrc_high = df = np.nan
    frrc_se = np.sqrt((components.var + (n_readers - 1) * (cov2 if n_readers > 1 else 0.0)) / n_readers)
    frrc_low, frrc_high, _ = _t_interval(mean, frrc_se, np.inf, alpha)
    return mean, rrrc_low, rrrc_high, df, frrc_low, frrc_high


def or_analysis(
    auc: ArrayLike, jackknife: ArrayLike, alpha: float = 0.05, treatment_names: list[str] | None = None
) -> ORResult:
    """Obuchowski–Rockette test of equal reader-averaged AUCs across treatments.

    RRRC (Hillis 2008): ``F = MS(T) / (MS(TR) + R * max(Cov2 - Cov3, 0))`` on ``T - 1`` and
    ``ddf = (MS(TR) + R * max(Cov2 - Cov3, 0))^2 / (MS(TR)^2 / ((T - 1)(R - 1)))`` degrees of
    freedom; the interval of a difference of two treatments uses the same denominator with
    ``2 / R``. FRRC: ``chi2 = (T - 1) MS(T) / (Var - Cov1 + (R - 1)(Cov2 - Cov3))`` on ``T - 1`` df.

    Args:
        auc: ``[T, R]`` AUCs (treatments x readers).
        jackknife: ``[K, T, R]`` leave-one-cluster-out AUCs (:func:`jackknife_aucs`).
        alpha: 1 - confidence level.
        treatment_names: labels of the treatments (default "1", "2", ...).

    Returns:
        An :class:`ORResult`.
    """
    auc = np.asarray(auc, dtype=np.float64)
    jackknife = np.asarray(jackknife, dtype=np.float64)
    n_treatments, n_readers = auc.shape
    if n_treatments < 2 or n_readers < 2:
        raise ValueError(f"OR analysis needs >= 2 treatments and >= 2 readers, got {auc.shape}")
    names = treatment_names or [str(t + 1) for t in range(n_treatments)]
    covariance = jackknife_covariance(jackknife.reshape(jackknife.shape[0], -1))
    components = or_variance_components(covariance, n_treatments, n_readers)
    treatment_means = auc.mean(axis=1)
    grand = auc.mean()
    ms_t = n_readers * float(np.sum((treatment_means - grand) ** 2)) / (n_treatments - 1)
    interaction = auc - treatment_means[:, None] - auc.mean(axis=0)[None, :] + grand
    ms_tr = float(np.sum(interaction**2)) / ((n_treatments - 1) * (n_readers - 1))

    rrrc_denominator = ms_tr + n_readers * max(components.cov2 - components.cov3, 0.0)
    ddf = rrrc_denominator**2 / (ms_tr**2 / ((n_treatments - 1) * (n_readers - 1))) if ms_tr > 0 else np.inf
    f = ms_t / rrrc_denominator
    rrrc = pd.DataFrame(
        {
            "f": [f],
            "df1": [n_treatments - 1],
            "df2": [ddf],
            "p": [float(stats.f.sf(f, n_treatments - 1, ddf))],
        }
    )
    frrc_denominator = (
        components.var - components.cov1 + (n_readers - 1) * (components.cov2 - components.cov3)
    )
    chi2 = (n_treatments - 1) * ms_t / frrc_denominator
    frrc = pd.DataFrame(
        {"chi2": [chi2], "df": [n_treatments - 1], "p": [float(stats.chi2.sf(chi2, n_treatments - 1))]}
    )

    rows = []
    for i in range(n_treatments):
        for j in range(i + 1, n_treatments):
            difference = float(treatment_means[i] - treatment_means[j])
            low, high, p = _t_interval(difference, np.sqrt(2 / n_readers * rrrc_denominator), ddf, alpha)
            f_low, f_high, f_p = _t_interval(
                difference, np.sqrt(2 / n_readers * frrc_denominator), np.inf, alpha
            )
            rows.append((f"{names[i]} - {names[j]}", difference, low, high, ddf, p, f_low, f_high, f_p))
    differences = pd.DataFrame(
        rows,
        columns=[
            "comparison",
            "estimate",
            "rrrc_low",
            "rrrc_high",
            "rrrc_df",
            "rrrc_p",
            "frrc_low",
            "frrc_high",
            "frrc_p",
        ],
    )
    per_treatment = []
    for t in range(n_treatments):
        block = slice(t * n_readers, (t + 1) * n_readers)
        per_treatment.append((names[t], *_single_treatment(auc[t], covariance[block, block], alpha)))
    treatments = pd.DataFrame(
        per_treatment,
        columns=["treatment", "auc", "rrrc_low", "rrrc_high", "rrrc_df", "frrc_low", "frrc_high"],
    )
    return ORResult(
        auc=auc,
        variance=components,
        ms_t=ms_t,
        ms_tr=ms_tr,
        n_clusters=int(jackknife.shape[0]),
        rrrc=rrrc,
        frrc=frrc,
        differences=differences,
        treatments=treatments,
    )


@dataclass(frozen=True)
class StandaloneResult:
    """A standalone algorithm against the readers' average AUC (Hillis 2007 section 5.3).

    Attributes:
        algorithm_auc: the algorithm's AUC.
        reader_auc: ``[R]`` the readers' AUCs.
        difference: algorithm minus reader-mean AUC.
        var: jackknife variance of a reader-minus-algorithm difference (averaged over readers).
        cov2: jackknife covariance of two readers' differences (averaged over reader pairs).
        ms_r: reader mean square of the differences.
        n_clusters: jackknife units (patients).
        table: one row per analysis (``RRRC``: readers and cases random; ``RRFC``: readers random,
            cases fixed; ``FRRC``: readers fixed, cases random) with ``estimate, se, df, statistic,
            p, low, high``.
    """

    algorithm_auc: float
    reader_auc: NDArray[np.float64]
    difference: float
    var: float
    cov2: float
    ms_r: float
    n_clusters: int
    table: pd.DataFrame


def standalone_vs_readers(
    algorithm_auc: float,
    reader_auc: ArrayLike,
    algorithm_jackknife: ArrayLike,
    reader_jackknife: ArrayLike,
    alpha: float = 0.05,
) -> StandaloneResult:
    """Is a standalone algorithm's AUC different from the readers' average? (CAD vs radiologists).

    With ``psi_r = AUC_algorithm - AUC_r`` and its jackknife covariance (Var on the diagonal, Cov2
    off it), RRRC: ``MS_den = MS(R) + R * max(Cov2, 0)``, ``t = mean(psi) / sqrt(MS_den / R)`` on
    ``ddf = MS_den^2 / (MS(R)^2 / (R - 1))`` degrees of freedom (Hillis 2007, section 5.3; RJafroc
    ``1T-RRRC``). RRFC is the paired t-test of the ``psi_r`` (RJafroc ``1T-RRFC``); FRRC uses
    ``(Var + (R - 1) Cov2) / R`` with the normal (the average of these readers, cases random).

    Args:
        algorithm_auc: the algorithm's AUC on the cases.
        reader_auc: ``[R]`` the readers' AUCs on the same cases.
        algorithm_jackknife: ``[K]`` the algorithm's leave-one-cluster-out AUCs.
        reader_jackknife: ``[K, R]`` the readers' leave-one-cluster-out AUCs (same clusters).
        alpha: 1 - confidence level.

    Returns:
        A :class:`StandaloneResult`; the signs are algorithm minus readers.
    """
    reader_auc = np.asarray(reader_auc, dtype=np.float64)
    reader_jackknife = np.asarray(reader_jackknife, dtype=np.float64)
    n_readers = reader_auc.size
    if n_readers < 2:
        raise ValueError(f"the readers-random analysis needs >= 2 readers, got {n_readers}")
    psi = algorithm_auc - reader_auc
    psi_jack = np.asarray(algorithm_jackknife, dtype=np.float64)[:, None] - reader_jackknife
    components = or_variance_components(jackknife_covariance(psi_jack), 1, n_readers)
    mean = float(psi.mean())
    ms_r = float(np.var(psi, ddof=1))
    rows = []
    denominator = ms_r + n_readers * max(components.cov2, 0.0)
    ddf = denominator**2 / (ms_r**2 / (n_readers - 1)) if ms_r > 0 else np.inf
    for name, se, df in (
        ("RRRC", np.sqrt(denominator / n_readers), ddf),
        ("RRFC", np.sqrt(ms_r / n_readers), float(n_readers - 1)),
        ("FRRC", np.sqrt((components.var + (n_readers - 1) * components.cov2) / n_readers), np.inf),
    ):
        low, high, p = _t_interval(mean, se, df, alpha)
        rows.append((name, mean, se, df, mean / se if se > 0 else np.nan, p, low, high))
    table = pd.DataFrame(rows, columns=["analysis", "estimate", "se", "df", "statistic", "p", "low", "high"])
    return StandaloneResult(
        algorithm_auc=float(algorithm_auc),
        reader_auc=reader_auc,
        difference=mean,
        var=components.var,
        cov2=components.cov2,
        ms_r=ms_r,
        n_clusters=int(psi_jack.shape[0]),
        table=table,
    )
