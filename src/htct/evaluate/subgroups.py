"""Results by treatment group: the metrics within each group and a test of whether an AUC differs
between groups (an interaction of the model's discrimination with treatment).

**Groups** (:func:`treatment_groups`): each medication category of the clinical sheet, and
thrombolysis yes (``thrombolytic``) / no (``antiplatelet``, ``anticoagulant``, ``none``); patients
whose medication is ``not_available`` are in their own medication group and in neither thrombolysis
group (whether they were thrombolysed is unknown).

**Too few patients.** A group's test set carries its metrics only with at least
:data:`MIN_PATIENTS_PER_CLASS` (5) patients with HT and 5 without: below that a sensitivity or
specificity moves by 20 points or more with one patient, the AUC's DeLong variance is not defined
or meaningless, and the table says "too few patients" instead of a number.

**Interaction test** (:func:`auc_interaction`): groups hold different patients, so their AUCs are
independent; with ``A_g`` the AUC in group g and ``V_g`` its patient-clustered DeLong variance
(Obuchowski 1997, :func:`htct.evaluate.delong.delong_covariance`), the test of equal AUCs is
Cochran's heterogeneity statistic ``Q = sum_g (A_g - A_w)^2 / V_g`` with ``A_w`` the inverse-variance
weighted mean, chi-square with (groups - 1) degrees of freedom. With two groups it is the square of
the usual ``z = (A_1 - A_2) / sqrt(V_1 + V_2)``. Only the groups that carry a number enter it. A
group whose AUC has no DeLong variance (perfect separation, AUC 1 or 0) leaves Q undefined (NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2

from htct.evaluate.bootstrap import bootstrap_metrics
from htct.evaluate.delong import delong_covariance
from htct.evaluate.metrics import METRICS
from htct.evaluate.study import with_reader_average

MIN_PATIENTS_PER_CLASS = 5
TOO_FEW = "too few patients"
MEDICATIONS = ("antiplatelet", "anticoagulant", "thrombolytic", "none", "not_available")
THROMBOLYSIS_NO = ("antiplatelet", "anticoagulant", "none")


def treatment_groups(clinical: pd.DataFrame) -> list[tuple[str, str, set[str]]]:
    """The treatment groups of a clinical sheet: ``(grouping, group, patient IDs)``.

    Args:
        clinical: the clinical sheet (patient_id, medication).

    Returns:
        Medication groups (each category in the sheet's order of :data:`MEDICATIONS`, also when
        empty), then thrombolysis yes / no (``not_available`` in neither).
    """
    medication = clinical.set_index(clinical["patient_id"].astype(str))["medication"].astype(str)
    groups = [("medication", m, set(medication.index[medication == m])) for m in MEDICATIONS]
    groups.append(("thrombolysis", "yes", set(medication.index[medication == "thrombolytic"])))
    groups.append(("thrombolysis", "no", set(medication.index[medication.isin(THROMBOLYSIS_NO)])))
    return groups


def class_patients(y_true: ArrayLike, patient_ids: ArrayLike) -> tuple[int, int]:
    """Patients with HT and without (a patient's scans share the label)."""
    truth = np.asarray(y_true).astype(int)
    patients = np.asarray(patient_ids)
    return int(np.unique(patients[truth == 1]).size), int(np.unique(patients[truth == 0]).size)


def carries(y_true: ArrayLike, patient_ids: ArrayLike, min_per_class: int = MIN_PATIENTS_PER_CLASS) -> bool:
    """Whether a group's scans carry its metrics: >= ``min_per_class`` patients with and without HT."""
    return min(class_patients(y_true, patient_ids)) >= min_per_class


def subgroup_metrics(
    scans: pd.DataFrame,
    scores: Mapping[str, ArrayLike],
    thresholds: Mapping[str, float],
    groups: Sequence[tuple[str, str, set[str]]],
    readers: Sequence[str] = (),
    average_name: str = "Average (clinician)",
    n_bootstrap: int = 2000,
    seed: int = 2026,
    min_per_class: int = MIN_PATIENTS_PER_CLASS,
) -> pd.DataFrame:
    """Every metric of every rater within each group, with patient-bootstrap intervals.

    Args:
        scans: the test scans (scan_id, patient_id, y_true), aligned with ``scores``.
        scores: rater -> score per scan (models and readers).
        thresholds: rater -> threshold.
        groups: ``(grouping, group, patient IDs)`` from :func:`treatment_groups`.
        readers: the raters that are clinicians: replaced by their average (each metric averaged
            inside each resample, as in Table 2).
        average_name: the average's rater name.
        n_bootstrap: resamples (the patients of the group are resampled).
        seed: bootstrap seed.
        min_per_class: the fewest patients with and without HT for a group to carry numbers.

    Returns:
        Long table ``grouping, group, rater, metric, value, low, high, n_patients, n_scans,
        n_ht_patients, n_non_ht_patients, carried``; where ``carried`` is False the values are NaN
        (shown as "too few patients").
    """
    models = [r for r in scores if r not in readers]
    raters = models + ([average_name] if readers else [])
    frames = []
    for grouping, group, patients in groups:
        rows = scans["patient_id"].astype(str).isin(patients).to_numpy()
        y = scans["y_true"].to_numpy(dtype=int)[rows]
        ids = scans["patient_id"].to_numpy()[rows]
        n_ht, n_non_ht = class_patients(y, ids)
        counts = {
            "n_patients": int(np.unique(ids).size),
            "n_scans": int(rows.sum()),
            "n_ht_patients": n_ht,
            "n_non_ht_patients": n_non_ht,
        }
        if min(n_ht, n_non_ht) >= min_per_class:
            result = bootstrap_metrics(
                y, ids, {r: np.asarray(s)[rows] for r, s in scores.items()}, thresholds, n_bootstrap, seed
            )
            if readers:
                result = with_reader_average(result, list(readers), average_name)
            long = result.ci().drop(columns="n_undefined")
            long = long[long["rater"].isin(raters)]
            carried = True
        else:
            long = pd.DataFrame(
                [(r, m, np.nan, np.nan, np.nan) for r in raters for m in METRICS],
                columns=["rater", "metric", "value", "low", "high"],
            )
            carried = False
        frames.append(long.assign(grouping=grouping, group=group, **counts, carried=carried))
    columns = ["grouping", "group", "rater", "metric", "value", "low", "high", *counts, "carried"]
    return pd.concat(frames, ignore_index=True)[columns]


def auc_heterogeneity(aucs: ArrayLike, variances: ArrayLike) -> tuple[float, int, float]:
    """Cochran's Q test of equal AUCs in independent groups.

    Args:
        aucs: one AUC per group.
        variances: their variances.

    Returns:
        ``(Q, degrees of freedom, p)``; NaNs with fewer than two groups or a zero variance.

    Example:
        >>> q, df, p = auc_heterogeneity([0.8, 0.6], [0.0025, 0.0025])
        >>> round(q, 3), df, round(p, 4)  # z = 0.2 / sqrt(0.005) = 2.828
        (8.0, 1, 0.0047)
    """
    a = np.asarray(aucs, dtype=float)
    v = np.asarray(variances, dtype=float)
    if a.size < 2 or not np.all(v > 0):
        return float("nan"), max(a.size - 1, 0), float("nan")
    weight = 1.0 / v
    pooled = float(np.sum(weight * a) / np.sum(weight))
    q = float(np.sum(weight * (a - pooled) ** 2))
    return q, int(a.size - 1), float(chi2.sf(q, a.size - 1))


def group_auc(y_true: ArrayLike, score: ArrayLike, patient_ids: ArrayLike) -> tuple[float, float]:
    """AUC and its patient-clustered DeLong variance within one group."""
    auc, covariance = delong_covariance(y_true, score, np.asarray(patient_ids))
    return float(auc[0]), float(covariance[0, 0])


def auc_interaction(
    scans: pd.DataFrame,
    scores: Mapping[str, NDArray[np.float64]],
    groups: Sequence[tuple[str, str, set[str]]],
    raters: Sequence[str],
    min_per_class: int = MIN_PATIENTS_PER_CLASS,
) -> pd.DataFrame:
    """Does a rater's AUC differ between the groups of a grouping? One row per (grouping, rater).

    Args:
        scans: the test scans (scan_id, patient_id, y_true), aligned with ``scores``.
        scores: rater -> score per scan.
        groups: ``(grouping, group, patient IDs)`` (:func:`treatment_groups`).
        raters: the raters tested (the models: a reader average has no DeLong variance).
        min_per_class: groups with fewer patients with or without HT are left out.

    Returns:
        Columns ``grouping, rater, groups_tested, groups_left_out, aucs, difference`` (first minus
        second group's AUC, two groups only), ``statistic`` (Q), ``df``, ``p``, ``test``.
    """
    rows = []
    y_all = scans["y_true"].to_numpy(dtype=int)
    ids_all = scans["patient_id"].astype(str).to_numpy()
    for grouping in dict.fromkeys(g[0] for g in groups):
        members = [(name, patients) for g, name, patients in groups if g == grouping]
        for rater in raters:
            tested, left_out, aucs, variances = [], [], [], []
            for name, patients in members:
                rows_in = np.isin(ids_all, list(patients))
                if carries(y_all[rows_in], ids_all[rows_in], min_per_class):
                    auc, variance = group_auc(
                        y_all[rows_in], np.asarray(scores[rater])[rows_in], ids_all[rows_in]
                    )
                    tested.append(name)
                    aucs.append(auc)
                    variances.append(variance)
                elif rows_in.any():
                    left_out.append(name)
            q, df, p = auc_heterogeneity(aucs, variances)
            rows.append(
                {
                    "grouping": grouping,
                    "rater": rater,
                    "groups_tested": ", ".join(tested),
                    "groups_left_out": ", ".join(left_out),
                    "aucs": ", ".join(f"{a:.3f}" for a in aucs),
                    "difference": aucs[0] - aucs[1] if len(aucs) == 2 else np.nan,
                    "statistic": q,
                    "df": df,
                    "p": p,
                    "test": TOO_FEW
                    if len(aucs) < 2
                    else "Cochran's Q of independent AUCs, patient-clustered DeLong variances"
                    if np.isfinite(q)
                    else "undefined: a group's AUC has no variance (perfect separation)",
                }
            )
    return pd.DataFrame(rows)
