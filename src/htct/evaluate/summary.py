"""Tables of the evaluation as numeric DataFrames, for the table, figure and report rules.

:func:`rater_inputs` turns the prediction tables (``results/predictions/{model}.tsv``) and the
readers sheet into aligned arrays; the other functions take those arrays and return DataFrames
with numeric values (fractions). :func:`format_ci` and :func:`format_metrics_table` render them as
the paper prints them, ``"64.52 (52.10–75.00)"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from htct.evaluate.agreement import cohen_kappa_matrix, fleiss_kappa, percent_agreement
from htct.evaluate.bootstrap import CIMethod, bootstrap_metrics
from htct.evaluate.delong import delong_ci, delong_test
from htct.evaluate.mcnemar import clustered_mcnemar_test, mcnemar_test
from htct.evaluate.metrics import METRICS, auc


def rater_inputs(
    predictions: Mapping[str, pd.DataFrame],
    readers: pd.DataFrame | None = None,
    part: str = "test",
    reader_threshold: float = 0.5,
) -> tuple[pd.DataFrame, dict[str, NDArray[np.float64]], dict[str, float]]:
    """Align models' and readers' scores on the scans of one split part.

    Args:
        predictions: model name -> prediction table with columns ``patient_id, scan_id, split,
            y_true, p_ht, threshold`` (one threshold per model, chosen on validation patients).
        readers: long readers table ``scan_id, reader, p_ht``, or None.
        part: the split part to evaluate (``"test"`` or ``"val"``).
        reader_threshold: a reader calls HT when ``p_ht >= reader_threshold``.

    Returns:
        ``(scans, scores, thresholds)``: ``scans`` has ``scan_id, patient_id, y_true`` sorted by
        scan ID; ``scores`` maps each model then each reader to ``p_ht`` in that order;
        ``thresholds`` maps each rater to its threshold.

    Raises:
        ValueError: when models disagree on the scans, truth or patients of the part, a model has
            several thresholds, or a reader has not read every scan.
    """
    if not predictions:
        raise ValueError("no prediction tables given")
    scans: pd.DataFrame | None = None
    scores: dict[str, NDArray[np.float64]] = {}
    thresholds: dict[str, float] = {}
    for model, table in predictions.items():
        rows = table[table["split"] == part].sort_values("scan_id").reset_index(drop=True)
        if rows.empty:
            raise ValueError(f"model {model!r} has no predictions for split part {part!r}")
        if rows["scan_id"].duplicated().any():
            raise ValueError(f"model {model!r} has duplicated scan_id rows in part {part!r}")
        model_scans = rows[["scan_id", "patient_id", "y_true"]].astype({"y_true": int})
        if scans is None:
            scans = model_scans
        elif not scans.equals(model_scans):
            raise ValueError(
                f"model {model!r} differs from the others in the scans, patients or truth of {part!r}"
            )
        model_thresholds = rows["threshold"].unique()
        if model_thresholds.size != 1:
            raise ValueError(f"model {model!r} has {model_thresholds.size} thresholds; expected one")
        scores[model] = rows["p_ht"].to_numpy(dtype=np.float64)
        thresholds[model] = float(model_thresholds[0])
    assert scans is not None
    if readers is not None:
        wide = readers.pivot(index="scan_id", columns="reader", values="p_ht")
        missing = sorted(set(scans["scan_id"]) - set(wide.index))
        if missing:
            raise ValueError(
                f"readers sheet lacks {len(missing)} scan(s) of part {part!r}, e.g. {missing[0]}"
            )
        wide = wide.loc[scans["scan_id"]]
        for reader in wide.columns:
            column = wide[reader]
            if column.isna().any():
                raise ValueError(f"reader {reader!r} has not read scan {column[column.isna()].index[0]}")
            scores[str(reader)] = column.to_numpy(dtype=np.float64)
            thresholds[str(reader)] = float(reader_threshold)
    return scans, scores, thresholds


def evaluate_raters(
    y_true: ArrayLike,
    patient_ids: ArrayLike,
    scores: Mapping[str, ArrayLike],
    thresholds: Mapping[str, float],
    n_bootstrap: int = 2000,
    seed: int = 2026,
    ci_method: CIMethod = "percentile",
    alpha: float = 0.05,
    metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """Every metric of every rater with patient-level bootstrap intervals (shared resamples).

    Args:
        y_true: 0/1 truth per scan.
        patient_ids: patient ID per scan.
        scores: rater name -> HT probability per scan.
        thresholds: rater name -> threshold (HT call when ``score >= threshold``).
        n_bootstrap: number of resamples.
        seed: bootstrap seed.
        ci_method: ``"percentile"`` or ``"bca"``.
        alpha: 1 - confidence level.
        metrics: which metrics.

    Returns:
        Long DataFrame ``rater, metric, value, low, high`` with fractions (not percent).
    """
    result = bootstrap_metrics(
        y_true,
        patient_ids,
        scores,
        thresholds,
        n_bootstrap=n_bootstrap,
        seed=seed,
        jackknife=ci_method == "bca",
        metrics=metrics,
    )
    return result.ci(ci_method, alpha)


def format_ci(value: float, low: float, high: float, percent: bool = True, digits: int = 2) -> str:
    """Render an estimate and its interval as ``"value (low–high)"``.

    Args:
        value: estimate (a fraction when ``percent`` is True).
        low: lower bound.
        high: upper bound.
        percent: multiply by 100.
        digits: decimals.

    Returns:
        e.g. ``format_ci(0.64516, 0.521, 0.75) == "64.52 (52.10–75.00)"``; ``"–"`` for a NaN
        estimate, ``"value (–)"`` when the interval is undefined (the tables' one spelling of a
        missing value, :data:`htct.tables.write.MISSING`).
    """
    scale = 100.0 if percent else 1.0
    if np.isnan(value):
        return "–"
    text = f"{value * scale:.{digits}f}"
    if np.isnan(low) or np.isnan(high):
        return f"{text} (–)"
    return f"{text} ({low * scale:.{digits}f}–{high * scale:.{digits}f})"


def format_metrics_table(
    long: pd.DataFrame, metrics: Sequence[str] | None = None, percent: bool = True, digits: int = 2
) -> pd.DataFrame:
    """Wide table of formatted ``"value (low–high)"`` strings: raters as rows, metrics as columns.

    Args:
        long: output of :func:`evaluate_raters`.
        metrics: columns in this order (default: those present, in :data:`METRICS` order).
        percent: percent scale.
        digits: decimals.

    Returns:
        DataFrame indexed by rater (first-appearance order).
    """
    if metrics is None:
        metrics = [m for m in METRICS if m in set(long["metric"])]
    text = long.assign(
        text=[
            format_ci(v, lo, hi, percent, digits)
            for v, lo, hi in long[["value", "low", "high"]].itertuples(index=False)
        ]
    )
    wide = text.pivot(index="rater", columns="metric", values="text")
    return wide.loc[list(dict.fromkeys(long["rater"])), list(metrics)]


def auc_table(
    y_true: ArrayLike,
    scores: Mapping[str, ArrayLike],
    reference: str,
    alpha: float = 0.05,
    patient_ids: ArrayLike | None = None,
) -> pd.DataFrame:
    """DeLong AUC with CI for every rater, and the paired DeLong test against ``reference``.

    Args:
        y_true: 0/1 truth per scan.
        scores: rater name -> score per scan.
        reference: rater compared with every other (e.g. ``"ctnet"``).
        alpha: 1 - confidence level.
        patient_ids: patient per scan: the variances are then Obuchowski's clustered ones (a
            patient's scans are one unit); None: scans are independent.

    Returns:
        DataFrame ``rater, auc, low, high, z, p`` (``z, p`` NaN on the reference's row); ``z`` is
        the reference minus the rater (> 0: the reference's AUC is the higher), the sign convention
        of the paper's claims (CTNet minus comparator).
    """
    y = np.asarray(y_true)
    units_per_class = [int(y.sum()), int((1 - y).sum())]
    if patient_ids is not None:
        patients = np.asarray(patient_ids)
        units_per_class = [np.unique(patients[y == 1]).size, np.unique(patients[y == 0]).size]
    if min(units_per_class) < 2:
        # DeLong's variance needs two scans of each class; report the AUC without interval or test.
        rows = [(rater, auc(y, score), np.nan, np.nan, np.nan, np.nan) for rater, score in scores.items()]
        return pd.DataFrame(rows, columns=["rater", "auc", "low", "high", "z", "p"])
    rows = []
    for rater, score in scores.items():
        value, low, high = delong_ci(y_true, score, alpha, patient_ids)
        z, p = (
            (np.nan, np.nan)
            if rater == reference
            else delong_test(y_true, scores[reference], score, patient_ids)  # reference minus rater
        )
        rows.append((rater, value, low, high, z, p))
    return pd.DataFrame(rows, columns=["rater", "auc", "low", "high", "z", "p"])


def mcnemar_tests(
    y_true: ArrayLike,
    scores: Mapping[str, ArrayLike],
    thresholds: Mapping[str, float],
    reference: str,
    patient_ids: ArrayLike | None = None,
) -> pd.DataFrame:
    """McNemar's test (correctness) of ``reference`` against every other rater.

    Args:
        y_true: 0/1 truth per scan.
        scores: rater name -> score per scan.
        thresholds: rater name -> threshold.
        reference: the rater compared with every other.
        patient_ids: patient per scan: the patient-level (Durkalski 2003) test when a patient has
            several scans; None: scans are independent.

    Returns:
        DataFrame ``rater, reference, reference_only_correct, rater_only_correct, statistic, p,
        method`` (method ``exact`` below 25 discordant scans, else ``chi2-cc``; ``durkalski`` for
        the clustered test).
    """
    calls = _calls(scores, thresholds)
    rows = []
    for rater, call in calls.items():
        if rater == reference:
            continue
        result = (
            mcnemar_test(y_true, calls[reference], call)
            if patient_ids is None
            else clustered_mcnemar_test(y_true, calls[reference], call, patient_ids)
        )
        rows.append(
            (rater, reference, result.a_only, result.b_only, result.statistic, result.p_value, result.method)
        )
    columns = [
        "rater",
        "reference",
        "reference_only_correct",
        "rater_only_correct",
        "statistic",
        "p",
        "method",
    ]
    return pd.DataFrame(rows, columns=columns)


def _calls(scores: Mapping[str, ArrayLike], thresholds: Mapping[str, float]) -> dict[str, NDArray[np.int64]]:
    return {r: (np.asarray(s, dtype=np.float64) >= thresholds[r]).astype(np.int64) for r, s in scores.items()}


def agreement_tables(
    scores: Mapping[str, ArrayLike],
    thresholds: Mapping[str, float],
    readers: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Percent agreement and Cohen's kappa matrices of all raters' calls; Fleiss' kappa of readers.

    Args:
        scores: rater name -> score per scan (models and readers).
        thresholds: rater name -> threshold.
        readers: names of the readers for Fleiss' kappa (default: all raters).

    Returns:
        ``(percent_agreement, cohen_kappa, fleiss_kappa_of_readers)``.
    """
    calls = _calls(scores, thresholds)
    reader_calls = calls if readers is None else {r: calls[r] for r in readers}
    return percent_agreement(calls), cohen_kappa_matrix(calls), fleiss_kappa(reader_calls)
