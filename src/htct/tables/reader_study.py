"""Tables 2 and 3 of the paper and the agreement and test tables, from the patient-level bootstrap.

Table 2: CTNet, each clinician and the clinicians' average (accuracy, sensitivity, specificity,
PPV, F1, AUC). Table 3: CTNet against the re-implemented baselines (accuracy, sensitivity,
specificity, macro-F1 — the paper's table 3 F1 is macro-averaged: an all-positive model at 64.52%
prevalence gets 64.52 / 100 / 0 / 39.22).

Both tables end with a trivial reference row, "every scan HT" (:data:`EVERY_SCAN_HT`): calling
every test scan HT scores accuracy = PPV = the prevalence p, sensitivity 100, specificity 0,
F1 2p / (1 + p) (table 2), macro-F1 p / (1 + p) (table 3) and AUC 0.5, each with its bootstrap
interval (the prevalence's). At the near-balanced prevalence of such cohorts an F1 near 80 is what
this row scores, so the models' rows are read against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from htct.evaluate import (
    format_ci,
)
from htct.models.registry import display_name
from htct.tables.write import MISSING

# The reader average's name, defined with the reader study's evaluation (htct.evaluate.study).
AVERAGE_READER = "Average (clinician)"
EVERY_SCAN_HT = "every_scan_ht"
"""The trivial reference rater of tables 2 and 3: every test scan called HT (in metrics.tsv only)."""
EVERY_SCAN_HT_LABEL = "Every scan HT (reference: accuracy = PPV = prevalence)"

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


def _tidy(long: pd.DataFrame, raters: Mapping[str, str], metrics: Mapping[str, str]) -> pd.DataFrame:
    """The metrics of `raters` as numbers in percent: one row per (Rater, Metric), columns estimate,
    lower, upper (the 95% CI)."""
    cells = long.set_index(["rater", "metric"])
    rows = [
        {"Rater": label, "Metric": metric_label}
        | dict(
            zip(
                ("estimate", "lower", "upper"),
                100 * cells.loc[(rater, metric), ["value", "low", "high"]],
                strict=True,
            )
        )
        for rater, label in raters.items()
        for metric, metric_label in metrics.items()
    ]
    return pd.DataFrame(rows, columns=["Rater", "Metric", "estimate", "lower", "upper"])


def ci_table(tidy: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """The pretty table of a tidy one (:func:`table2_tidy`): raters as rows, metrics as columns,
    cells ``"estimate (lower–upper)"`` in the tidy table's units."""
    raters, metrics = list(dict.fromkeys(tidy["Rater"])), list(dict.fromkeys(tidy["Metric"]))
    cells = tidy.set_index(["Rater", "Metric"])
    columns = ["estimate", "lower", "upper"]
    return pd.DataFrame(
        {
            metric: [
                format_ci(*cells.loc[(rater, metric), columns], percent=False, digits=digits)
                for rater in raters
            ]
            for metric in metrics
        },
        index=pd.Index(raters, name="Rater"),
    )


def table2_tidy(long: pd.DataFrame, model: str, readers: Sequence[str]) -> pd.DataFrame:
    """Table 2 as numbers: the model, every clinician and their average; each metric's estimate,
    lower and upper 95% bound in %.

    Args:
        long: interval table (rater, metric, value, low, high) including `AVERAGE_READER` when
            there are readers (see `with_reader_average`).
        model: the model's rater name (e.g. "ctnet").
        readers: reader names in table order.

    Returns:
        One row per (Rater, Metric): raters CTNet, the readers, "Average (clinician)"; metrics
        Accuracy .. AUC.
    """
    raters = {model: display_name(model)} | {reader: reader for reader in readers}
    if readers:
        raters[AVERAGE_READER] = AVERAGE_READER
    return _tidy(long, _with_reference(long, raters), TABLE2_METRICS)


def table2(long: pd.DataFrame, model: str, readers: Sequence[str]) -> pd.DataFrame:
    """Table 2 as the paper prints it: rows CTNet, the readers, "Average (clinician)"; columns
    Accuracy .. AUC; cells "value (low–high)" in % (the pretty form of :func:`table2_tidy`)."""
    return ci_table(table2_tidy(long, model, readers))


def table3_tidy(long: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Table 3 as numbers: each model's accuracy, sensitivity, specificity, macro-F1 (%, 95% CI), and
    the "every scan HT" reference row when `long` holds it."""
    return _tidy(
        long, _with_reference(long, {model: display_name(model) for model in models}), TABLE3_METRICS
    )


def _with_reference(long: pd.DataFrame, raters: Mapping[str, str]) -> dict[str, str]:
    """The table's raters, and last the "every scan HT" reference row when the evaluation holds it."""
    raters = dict(raters)
    if (long["rater"] == EVERY_SCAN_HT).any():
        raters[EVERY_SCAN_HT] = EVERY_SCAN_HT_LABEL
    return raters


def table3(long: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Table 3: CTNet against the baselines: accuracy, sensitivity, specificity, macro-F1 (%, CI)."""
    return ci_table(table3_tidy(long, models))


def agreement_tidy(percent_agreement: pd.DataFrame, kappa: pd.DataFrame) -> pd.DataFrame:
    """Pairwise agreement and Cohen's kappa as numbers: one row per (statistic, rater, other rater)."""
    blocks = {"Percent agreement": percent_agreement, "Cohen's kappa": kappa}
    rows = [
        {"statistic": name, "rater": _label(rater), "other_rater": _label(other), "value": float(value)}
        for name, block in blocks.items()
        for rater, row in block.iterrows()
        for other, value in row.items()
    ]
    return pd.DataFrame(rows, columns=["statistic", "rater", "other_rater", "value"])


def agreement_table(percent_agreement: pd.DataFrame, kappa: pd.DataFrame) -> pd.DataFrame:
    """The agreement and Cohen's kappa matrices stacked, values to two decimals (the pretty form of
    :func:`agreement_tidy`)."""
    tidy = agreement_tidy(percent_agreement, kappa)
    order = {column: list(dict.fromkeys(tidy[column])) for column in ("statistic", "rater", "other_rater")}
    table = tidy.pivot(index=["statistic", "rater"], columns="other_rater", values="value")
    table = table.reindex(
        pd.MultiIndex.from_product([order["statistic"], order["rater"]], names=["statistic", "rater"])
    )[order["other_rater"]]
    table.columns.name = None
    return table.map(lambda value: _decimals(value, 2))


def tests_tidy(
    auc_tests: pd.DataFrame, mcnemar: pd.DataFrame, reference: str, clustered: bool = False
) -> pd.DataFrame:
    """DeLong (AUC) and McNemar (correct calls) tests of the reference model against every rater,
    as numbers (p-values unrounded); one row per comparison. DeLong's z is the reference minus the
    rater (> 0: the reference's AUC is the higher), as the claims' differences are.

    With ``clustered`` the tests were computed with patients as the unit (Obuchowski's clustered
    DeLong variance, Durkalski's McNemar); a column says so.
    """
    delong = auc_tests[auc_tests["rater"] != reference].set_index("rater")
    mcn = mcnemar.set_index("rater")
    return pd.DataFrame(
        {
            "AUC": delong["auc"].to_numpy(),
            f"AUC {_label(reference)}": float(auc_tests.set_index("rater").loc[reference, "auc"]),
            f"DeLong z ({_label(reference)} − rater)": delong["z"].to_numpy(),
            "DeLong p": delong["p"].to_numpy(),
            "McNemar statistic": mcn.loc[delong.index, "statistic"].to_numpy(),
            "McNemar p": mcn.loc[delong.index, "p"].to_numpy(),
            "McNemar method": mcn.loc[delong.index, "method"].to_numpy(),
            "Unit": "patient (clustered)" if clustered else "scan",
        },
        index=pd.Index(
            [f"{_label(reference)} vs {_label(rater)}" for rater in delong.index], name="comparison"
        ),
    )


def tests_table(auc_tests: pd.DataFrame, mcnemar: pd.DataFrame, reference: str) -> pd.DataFrame:
    """DeLong and McNemar p-values of the reference model against every rater: the pretty form of
    :func:`tests_tidy` (p-values as "<0.001" or three decimals, other numbers three decimals)."""
    return format_tests(tests_tidy(auc_tests, mcnemar, reference))


def format_tests(tidy: pd.DataFrame) -> pd.DataFrame:
    """Display strings of a tests table: columns ending in " p" as p-values, other numbers to three
    decimals, text as is."""

    def column(name: str, values: pd.Series) -> list[str]:
        if not pd.api.types.is_numeric_dtype(values):
            return [str(value) for value in values]
        return [_p(value) if name.endswith(" p") else _decimals(value) for value in values]

    return pd.DataFrame({name: column(name, values) for name, values in tidy.items()}, index=tidy.index)


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
    return EVERY_SCAN_HT_LABEL if rater == EVERY_SCAN_HT else display_name(rater)


def _p(value: float) -> str:
    return MISSING if np.isnan(value) else ("<0.001" if value < 0.001 else f"{value:.3f}")


def _decimals(value: float, digits: int = 3) -> str:
    return MISSING if np.isnan(value) else f"{value:.{digits}f}"
