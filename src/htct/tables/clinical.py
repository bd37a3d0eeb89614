"""The tables of image and clinical information (issue 24), tidy and pretty:

- "Image and clinical information": the clinical model, CTNet, CTNet + clinical, the clinicians'
  average and (synthetic cohort) the two ceilings; AUC, sensitivity, specificity, F1 (%, 95% CI),
  calibration slope and intercept;
- the "adds to" claims and the distances from the ceilings, with verdicts;
- Table 2's metrics by treatment group, and the test of whether an AUC differs between groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from htct.clinical.evaluate import FULL_CEILING, IMAGE_CEILING, rater_order
from htct.clinical.model import CLINICAL_LABEL, FUSION_LABEL
from htct.evaluate.subgroups import MIN_PATIENTS_PER_CLASS, TOO_FEW
from htct.evaluate.summary import format_ci
from htct.models.registry import display_name
from htct.tables.reader_study import AVERAGE_READER, TABLE2_METRICS
from htct.tables.write import MISSING, write_table

RATER_LABELS = {
    "clinical": CLINICAL_LABEL,
    "ctnet_clinical": FUSION_LABEL,
    AVERAGE_READER: AVERAGE_READER,
    IMAGE_CEILING: "Ceiling: image only (p_image_scan, known)",
    FULL_CEILING: "Ceiling: image + clinical (p_true, known)",
}
IMAGE_CLINICAL_METRICS = {
    "auc": "AUC",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "f1": "F1",
}
CALIBRATION_METRICS = {
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept",
}
GROUP_LABELS = {
    ("medication", "antiplatelet"): "Medication: antiplatelet",
    ("medication", "anticoagulant"): "Medication: anticoagulant",
    ("medication", "thrombolytic"): "Medication: thrombolytic",
    ("medication", "none"): "Medication: none",
    ("medication", "not_available"): "Medication: not available",
    ("thrombolysis", "yes"): "Thrombolysis: yes",
    ("thrombolysis", "no"): "Thrombolysis: no (not available excluded)",
}


def rater_label(rater: str) -> str:
    """A rater's name in these tables."""
    return RATER_LABELS.get(rater, display_name(rater))


def image_clinical_tidy(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (Rater, Metric): estimate, lower, upper; the four metrics in %, calibration as is."""
    cells = metrics.set_index(["rater", "metric"])
    rows = []
    for rater in rater_order(metrics["rater"].unique()):
        for metric, label in (IMAGE_CLINICAL_METRICS | CALIBRATION_METRICS).items():
            value, low, high = cells.loc[(rater, metric), ["value", "low", "high"]].astype(float)
            scale = 100.0 if metric in IMAGE_CLINICAL_METRICS else 1.0
            rows.append((rater_label(rater), label, scale * value, scale * low, scale * high))
    return pd.DataFrame(rows, columns=["Rater", "Metric", "estimate", "lower", "upper"])


def image_clinical_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """The pretty table: raters as rows; "estimate (lower–upper)" for the metrics, 2 decimals for calibration."""
    raters = list(dict.fromkeys(tidy["Rater"]))
    cells = tidy.set_index(["Rater", "Metric"])
    columns = {}
    for metric in [*IMAGE_CLINICAL_METRICS.values(), *CALIBRATION_METRICS.values()]:
        columns[metric] = [
            format_ci(*cells.loc[(rater, metric), ["estimate", "lower", "upper"]], percent=False)
            if metric in IMAGE_CLINICAL_METRICS.values()
            else _number(cells.loc[(rater, metric), "estimate"])
            for rater in raters
        ]
    return pd.DataFrame(columns, index=pd.Index(raters, name="Rater"))


def _number(value: float, digits: int = 2) -> str:
    return MISSING if not np.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if not np.isfinite(value):
        return MISSING
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def claims_table(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims as shown: claim, test, AUC difference with its interval, p, verdict."""
    table = pd.DataFrame(
        {
            "Test": claims["test"],
            "AUCs": [f"{a:.3f} vs {b:.3f}" for a, b in claims[["auc_larger", "auc_smaller"]].to_numpy()],
            "Difference (95% CI)": [
                format_ci(v, lo, hi, percent=False, digits=3)
                for v, lo, hi in claims[["estimate", "low", "high"]].to_numpy()
            ],
            "p": [_p(p) for p in claims["p"]],
            "Verdict": claims["verdict"],
        }
    )
    return table.set_axis(pd.Index(claims["claim"], name="Claim"))


def treatment_tidy(treatment: pd.DataFrame) -> pd.DataFrame:
    """Table 2's metrics by treatment group, in % (NaN where the group carries no number)."""
    keep = treatment[treatment["metric"].isin(TABLE2_METRICS)].copy()
    keep["Group"] = [GROUP_LABELS.get((g, v), f"{g}: {v}") for g, v in keep[["grouping", "group"]].to_numpy()]
    keep["Rater"] = keep["rater"].map(rater_label)
    keep["Metric"] = keep["metric"].map(TABLE2_METRICS)
    for column in ("value", "low", "high"):
        keep[column] = 100 * keep[column]
    keep = keep.rename(columns={"value": "estimate", "low": "lower", "high": "upper"})
    counts = ["n_patients", "n_scans", "n_ht_patients", "n_non_ht_patients", "carried"]
    return keep[["Group", "Rater", "Metric", "estimate", "lower", "upper", *counts]].reset_index(drop=True)


def treatment_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Rows (Group, Rater); columns n and Table 2's metrics; "too few patients" where a group cannot carry one."""
    rows, index = [], []
    for (group, rater), cells in tidy.groupby(["Group", "Rater"], sort=False):
        first = cells.iloc[0]
        row = {
            "n (patients: HT / no HT; scans)": f"{first['n_patients']}: {first['n_ht_patients']} / "
            f"{first['n_non_ht_patients']}; {first['n_scans']}"
        }
        for metric in TABLE2_METRICS.values():
            cell = cells[cells["Metric"] == metric].iloc[0]
            row[metric] = (
                format_ci(cell["estimate"], cell["lower"], cell["upper"], percent=False)
                if cell["carried"]
                else TOO_FEW
            )
        rows.append(row)
        index.append((group, rater))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["Group", "Rater"]))


def interaction_table(interaction: pd.DataFrame) -> pd.DataFrame:
    """The interaction tests as shown: per grouping and model, the groups, their AUCs, Q, df, p."""
    table = pd.DataFrame(
        {
            "Groups tested": interaction["groups_tested"].replace("", MISSING),
            "AUCs": interaction["aucs"].replace("", MISSING),
            "Groups with too few patients": interaction["groups_left_out"].replace("", MISSING),
            "Q (df)": [
                f"{q:.2f} ({df})" if np.isfinite(q) else test
                for q, df, test in interaction[["statistic", "df", "test"]].to_numpy()
            ],
            "p": [_p(p) for p in interaction["p"]],
        }
    )
    index = pd.MultiIndex.from_arrays(
        [interaction["grouping"].str.capitalize(), interaction["rater"].map(rater_label)],
        names=["Grouping", "Model"],
    )
    return table.set_axis(index)


def write_image_clinical_tables(
    out: dict[str, pd.DataFrame], stems: dict[str, str], n_bootstrap: int, synthetic: bool
) -> None:
    """Write the four tables (csv, md, tex, html each) of :func:`htct.clinical.evaluate.evaluate_image_clinical`.

    Args:
        out: its result (metrics, claims, treatment, interaction).
        stems: table (``image_clinical``, ``claims``, ``treatment``, ``interaction``) -> output path
            without extension.
        n_bootstrap: the bootstrap's resamples (for the titles).
        synthetic: whether the data are the synthetic cohort (the notice).
    """
    ci = f"95% CI, patient-level bootstrap ({n_bootstrap} resamples)"
    tidy = image_clinical_tidy(out["metrics"])
    title = (
        f"Image and clinical information on the test set, % ({ci}); calibration slope and intercept "
        "on the logit (clinicians: their mean probability)"
    )
    write_table(image_clinical_table(tidy), stems["image_clinical"], title, synthetic, tidy=tidy)
    title = (
        "Does the scan add to the clinical variables, and they to the scan? How far is each model "
        "from its ceiling? (test set, AUC differences)"
    )
    write_table(claims_table(out["claims"]), stems["claims"], title, synthetic, tidy=out["claims"])
    tidy = treatment_tidy(out["treatment"])
    title = (
        f"Table 2's metrics by treatment group on the test set, % ({ci}); '{TOO_FEW}': fewer than "
        f"{MIN_PATIENTS_PER_CLASS} patients with or without HT in the group"
    )
    write_table(treatment_table(tidy), stems["treatment"], title, synthetic, tidy=tidy)
    title = (
        "Does the AUC differ between treatment groups? Cochran's Q of the groups' independent AUCs "
        "(patient-clustered DeLong variances)"
    )
    write_table(
        interaction_table(out["interaction"]), stems["interaction"], title, synthetic, tidy=out["interaction"]
    )
