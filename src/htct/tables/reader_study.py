"""Tables 2 and 3 of the paper and the agreement and test tables, from the patient-level bootstrap.

Table 2: CTNet, each clinician and the clinicians' average (accuracy, sensitivity, specificity,
PPV, F1, AUC). Table 3: CTNet against the re-implemented baselines (accuracy, sensitivity,
specificity, macro-F1 — the paper's table 3 F1 is macro-averaged: an all-positive model at 64.52%
prevalence gets 64.52 / 100 / 0 / 39.22).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from htct.evaluate import (
    BootstrapResult,
    agreement_tables,
    auc_table,
    bootstrap_metrics,
    format_ci,
    mcnemar_table,
    rater_inputs,
)
from htct.models.registry import display_name

AVERAGE_READER = "Average (clinician)"
TABLE2_METRICS = {
    "accuracy": "Accuracy",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV",
    "f1": "F1",
    "auc": "AUC",
}
TABLE3_METRICS = {
    "accuracy": "Accuracy",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "macro_f1": "F1 (macro)",
}


def with_reader_average(
    result: BootstrapResult, readers: Sequence[str], name: str = AVERAGE_READER
) -> BootstrapResult:
    """Add a rater whose every metric is the mean over `readers`, in each resample.

    Averaging inside each resample (rather than averaging the readers' intervals) gives the interval
    of the average itself, with the patient-level resampling shared by all readers.

    Args:
        result: bootstrap of models and readers.
        readers: the reader names to average.
        name: the new rater's name.

    Returns:
        A copy of `result` with the extra rater last.
    """
    columns = [result.raters.index(reader) for reader in readers]

    def extend(values: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
        if values is None:
            return None
        with np.errstate(all="ignore"):
            out = {}
            for metric, array in values.items():
                mean = np.nanmean(array[..., columns], axis=-1, keepdims=True)
                out[metric] = np.concatenate([array, mean], axis=-1)
        return out

    return replace(
        result,
        raters=[*result.raters, name],
        estimate=extend(result.estimate),
        replicates=extend(result.replicates),
        jackknife=extend(result.jackknife),
    )


def _formatted(long: pd.DataFrame, raters: Mapping[str, str], metrics: Mapping[str, str]) -> pd.DataFrame:
    cells = long.set_index(["rater", "metric"])
    table = pd.DataFrame(
        {
            label: [format_ci(*cells.loc[(rater, metric), ["value", "low", "high"]]) for rater in raters]
            for metric, label in metrics.items()
        },
        index=pd.Index(list(raters.values()), name="Rater"),
    )
    return table


def table2(long: pd.DataFrame, model: str, readers: Sequence[str]) -> pd.DataFrame:
    """Table 2: the model, every clinician and their average, each metric "value (low–high)" in %.

    Args:
        long: interval table (rater, metric, value, low, high) including `AVERAGE_READER` when
            there are readers (see `with_reader_average`).
        model: the model's rater name (e.g. "ctnet").
        readers: reader names in table order.

    Returns:
        Rows CTNet, the readers, "Average (clinician)"; columns Accuracy .. AUC.
    """
    raters = {model: display_name(model)} | {reader: reader for reader in readers}
    if readers:
        raters[AVERAGE_READER] = AVERAGE_READER
    return _formatted(long, raters, TABLE2_METRICS)


def table3(long: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Table 3: CTNet against the baselines: accuracy, sensitivity, specificity, macro-F1 (%, CI)."""
    return _formatted(long, {model: display_name(model) for model in models}, TABLE3_METRICS)


def agreement_table(percent_agreement: pd.DataFrame, kappa: pd.DataFrame) -> pd.DataFrame:
    """Stack the pairwise agreement and Cohen's kappa matrices, values to two decimals."""
    blocks = {"Percent agreement": percent_agreement, "Cohen's kappa": kappa}
    table = pd.concat({name: block.rename(index=_label, columns=_label) for name, block in blocks.items()})
    table.index.names = ["statistic", "rater"]
    return table.map(lambda value: f"{value:.2f}")


def tests_table(
    auc_tests: pd.DataFrame, mcnemar: pd.DataFrame, reference: str, clustered: bool = False
) -> pd.DataFrame:
    """DeLong (AUC) and McNemar (correct calls) p-values of the reference model against every rater.

    With ``clustered`` the tests were computed with patients as the unit (Obuchowski's clustered
    DeLong variance, Durkalski's McNemar); a column says so.
    """
    delong = auc_tests[auc_tests["rater"] != reference].set_index("rater")
    mcn = mcnemar.set_index("rater")
    table = pd.DataFrame(
        {
            "AUC": [f"{value:.3f}" for value in delong["auc"]],
            f"AUC {_label(reference)}": f"{auc_tests.set_index('rater').loc[reference, 'auc']:.3f}",
            "DeLong z": [f"{value:.3f}" for value in delong["z"]],
            "DeLong p": [_p(value) for value in delong["p"]],
            "McNemar statistic": [f"{value:.3f}" for value in mcn.loc[delong.index, "statistic"]],
            "McNemar p": [_p(value) for value in mcn.loc[delong.index, "p"]],
            "McNemar method": list(mcn.loc[delong.index, "method"]),
            "Unit": "patient (clustered)" if clustered else "scan",
        },
        index=pd.Index(
            [f"{_label(reference)} vs {_label(rater)}" for rater in delong.index], name="comparison"
        ),
    )
    return table


def undefined_resamples_note(
    long: pd.DataFrame, raters: Sequence[str], metrics: Mapping[str, str], n_resamples: int
) -> str:
    """A sentence on the resamples left out of each metric's interval because it was undefined there.

    Args:
        long: interval table with ``n_undefined`` (:meth:`BootstrapResult.ci`).
        raters: the table's raters.
        metrics: the table's metrics (name -> label).
        n_resamples: the bootstrap resamples drawn.

    Returns:
        e.g. ``"Resamples left out where a metric was undefined (of 2000): PPV 2–72 (most: Clinician
        7); AUC 3 (every rater)."``, or ``""`` when every resample defined every metric.
    """
    rows = long[long["rater"].isin(raters) & long["metric"].isin(metrics)]
    parts = []
    for metric, label in metrics.items():
        counts = rows.loc[rows["metric"] == metric].set_index("rater")["n_undefined"]
        if counts.empty or counts.max() == 0:
            continue
        if counts.min() == counts.max() and len(counts) > 1:
            parts.append(f"{label} {counts.max()} (every rater)")
        elif counts.min() == counts.max():
            parts.append(f"{label} {counts.max()}")
        else:
            parts.append(f"{label} {counts.min()}–{counts.max()} (most: {_label(counts.idxmax())})")
    if not parts:
        return ""
    return f"Resamples left out where a metric was undefined (of {n_resamples}): " + "; ".join(parts) + "."


def _label(rater: str) -> str:
    return display_name(rater)


def _p(value: float) -> str:
    return "NA" if np.isnan(value) else ("<0.001" if value < 0.001 else f"{value:.3f}")


def evaluate_study(
    predictions: Mapping[str, pd.DataFrame],
    readers: pd.DataFrame | None,
    n_bootstrap: int = 2000,
    seed: int = 2026,
    ci_method: str = "percentile",
    reader_threshold: float = 0.5,
) -> dict[str, pd.DataFrame]:
    """All test-set evaluations of the reader study, from prediction tables and the readers sheet.

    The first model is the reference (CTNet in the paper's configuration): table 2 compares it with
    the readers, table 3 with the other models, the tests table gives its DeLong and McNemar
    p-values against every other rater.

    Args:
        predictions: model name -> prediction table (patient_id, scan_id, split, y_true, p_ht, threshold).
        readers: the readers sheet restricted to the test scans, or None.
        n_bootstrap: patient-level bootstrap resamples.
        seed: bootstrap seed.
        ci_method: "percentile" or "bca".
        reader_threshold: a reader calls HT when p_ht >= this.

    Returns:
        DataFrames: metrics (long, numeric), table2, table3, agreement, tests, scans (the test
        scans with each rater's score and call).
    """
    models = list(predictions)
    reference = models[0]
    scans, scores, thresholds = rater_inputs(predictions, readers, "test", reader_threshold)
    reader_names = [rater for rater in scores if rater not in predictions]
    result = bootstrap_metrics(
        scans["y_true"],
        scans["patient_id"],
        scores,
        thresholds,
        n_bootstrap,
        seed,
        jackknife=ci_method == "bca",
    )
    if reader_names:
        result = with_reader_average(result, reader_names)
    long = result.ci(ci_method)
    y_true = scans["y_true"].to_numpy()
    # Agreement of the model with the clinicians; without a reader study, among the models.
    agreement_raters = [reference, *reader_names] if reader_names else models
    percent, kappa, fleiss = agreement_tables(
        {r: scores[r] for r in agreement_raters}, thresholds, readers=reader_names or None
    )
    calls = pd.DataFrame({f"call_{r}": (scores[r] >= thresholds[r]).astype(int) for r in scores})
    per_scan = pd.concat([scans, pd.DataFrame({f"p_{r}": s for r, s in scores.items()}), calls], axis=1)
    return {
        "metrics": long,
        "table2": table2(long, reference, reader_names),
        "table3": table3(long, models),
        "agreement": agreement_table(percent, kappa),
        "agreement_numeric": pd.concat({"percent_agreement": percent, "cohen_kappa": kappa}),
        "fleiss_kappa": pd.DataFrame({"fleiss_kappa_readers": [fleiss]}),
        "tests": tests_table(
            auc_table(y_true, scores, reference, patient_ids=scans["patient_id"]),
            mcnemar_table(y_true, scores, thresholds, reference, patient_ids=scans["patient_id"]),
            reference,
            clustered=True,
        ),
        "scans": per_scan,
    }
