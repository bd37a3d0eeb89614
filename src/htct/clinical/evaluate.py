"""Image and clinical information on the test scans: the clinical model, CTNet, their fusion, the
clinicians and (synthetic cohort) the two ceilings; the "adds to" claims; results by treatment.

Every number here is computed on the test scans with the evaluation's patient-level bootstrap
(same resamples and seed as Table 2). The ceilings are the synthetic cohort's known probabilities:
``p_image_scan`` (what the scan can tell: the image-only oracle) and ``p_true`` (what the scan and
the chart together can tell); they are called at ``paper.oracle_threshold`` (0.5), as the oracle of
the paper comparison is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from htct.evaluate.bootstrap import bootstrap_metrics
from htct.evaluate.calibration import calibration_slope_intercept
from htct.evaluate.delong import delong_covariance
from htct.evaluate.study import with_reader_average
from htct.evaluate.subgroups import auc_interaction, subgroup_metrics, treatment_groups
from htct.evaluate.summary import rater_inputs
from htct.paper.claims import verdict
from htct.tables.reader_study import AVERAGE_READER

IDS = {"patient_id": str, "scan_id": str}
#: The ceilings' rater names (synthetic cohort only).
IMAGE_CEILING = "ceiling_image"
FULL_CEILING = "ceiling_image_clinical"
MODELS = ("clinical", "ctnet", "ctnet_clinical")


def ceiling_scores(scans: pd.DataFrame, truth_dir: str | Path | None) -> dict[str, np.ndarray]:
    """The known probabilities of the test scans: ``p_image_scan`` per scan and ``p_true`` per patient.

    Args:
        scans: test scans (scan_id, patient_id) in evaluation order.
        truth_dir: the synthetic cohort's truth folder (scans.tsv, patients.tsv), or None.

    Returns:
        rater -> score per scan, for the truth files present (empty for an own cohort).
    """
    out: dict[str, np.ndarray] = {}
    if not truth_dir:
        return out
    for name, file, key, column in (
        (IMAGE_CEILING, "scans.tsv", "scan_id", "p_image_scan"),
        (FULL_CEILING, "patients.tsv", "patient_id", "p_true"),
    ):
        path = Path(truth_dir) / file
        if path.is_file():
            truth = pd.read_csv(path, sep="\t", dtype=IDS).set_index(key)[column]
            values = scans[key].map(truth)
            if values.isna().any():
                raise ValueError(
                    f"{path} has no {column} for test {key} {scans.loc[values.isna(), key].iloc[0]}"
                )
            out[name] = values.to_numpy(dtype=float)
    return out


def paired_auc_difference(
    y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, patient_ids: np.ndarray, alpha: float = 0.05
) -> dict[str, float]:
    """AUC(a) - AUC(b) on the same scans with its patient-clustered DeLong interval and p-value."""
    auc, cov = delong_covariance(y_true, np.vstack([score_a, score_b]), patient_ids)
    difference = float(auc[0] - auc[1])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    half = norm.ppf(1 - alpha / 2) * se
    p = float(2 * norm.sf(abs(difference) / se)) if se > 0 else float("nan")
    return {
        "auc_a": float(auc[0]),
        "auc_b": float(auc[1]),
        "estimate": difference,
        # The normal interval clipped to the differences that exist, as delong_ci clips to [0, 1].
        "low": max(-1.0, difference - half) if se > 0 else float("nan"),
        "high": min(1.0, difference + half) if se > 0 else float("nan"),
        "p": p,
    }


# claim id -> (claim, the rater whose AUC should be larger, the other, what the comparison means)
CLAIMS = {
    "scan_adds_to_clinical": (
        "The scan adds to the clinical variables",
        "ctnet_clinical",
        "clinical",
        "AUC of CTNet + clinical minus the clinical model's",
    ),
    "clinical_adds_to_scan": (
        "The clinical variables add to the scan",
        "ctnet_clinical",
        "ctnet",
        "AUC of CTNet + clinical minus CTNet's",
    ),
    "ctnet_below_image_ceiling": (
        "CTNet is below its ceiling (the image-only oracle)",
        IMAGE_CEILING,
        "ctnet",
        "AUC of p_image_scan minus CTNet's",
    ),
    "clinical_below_full_ceiling": (
        "The clinical model is below the image + clinical ceiling",
        FULL_CEILING,
        "clinical",
        "AUC of p_true minus the clinical model's",
    ),
    "fusion_below_full_ceiling": (
        "CTNet + clinical is below its ceiling (image + clinical truth)",
        FULL_CEILING,
        "ctnet_clinical",
        "AUC of p_true minus CTNet + clinical's",
    ),
}


def image_clinical_claims(
    scans: pd.DataFrame, scores: Mapping[str, np.ndarray], alpha: float = 0.05
) -> pd.DataFrame:
    """The "adds to" claims and the distances from the ceilings, decided on the test scans.

    Each is a paired, patient-clustered DeLong comparison of two AUCs on the same scans; the verdict
    is :func:`htct.paper.claims.verdict` of the difference's interval (holds when it is above 0).
    Claims about a ceiling are left out when the run has no ceilings (an own cohort).
    """
    y = scans["y_true"].to_numpy(dtype=int)
    ids = scans["patient_id"].astype(str).to_numpy()
    rows = []
    for claim_id, (claim, larger, smaller, meaning) in CLAIMS.items():
        if larger not in scores or smaller not in scores:
            continue
        result = paired_auc_difference(y, scores[larger], scores[smaller], ids, alpha)
        rows.append(
            {
                "claim_id": claim_id,
                "claim": claim,
                "test": f"{meaning}; paired DeLong, patient-clustered (Obuchowski), {100 * (1 - alpha):.0f}% CI",
                "auc_larger": result["auc_a"],
                "auc_smaller": result["auc_b"],
                "estimate": result["estimate"],
                "low": result["low"],
                "high": result["high"],
                "p": result["p"],
                "verdict": verdict(result["low"], result["high"]),
            }
        )
    return pd.DataFrame(rows)


def evaluate_image_clinical(
    predictions: Mapping[str, pd.DataFrame],
    readers: pd.DataFrame | None,
    clinical: pd.DataFrame,
    truth_dir: str | Path | None,
    n_bootstrap: int = 2000,
    seed: int = 2026,
    reader_threshold: float = 0.5,
    ceiling_threshold: float = 0.5,
    alpha: float = 0.05,
) -> dict[str, pd.DataFrame]:
    """Every number of the image-and-clinical tables.

    Args:
        predictions: ``clinical``, ``ctnet`` and ``ctnet_clinical`` prediction tables.
        readers: the readers sheet (test scans), or None.
        clinical: the clinical sheet (treatment groups).
        truth_dir: the synthetic truth folder, or None (no ceilings).
        n_bootstrap: patient-bootstrap resamples.
        seed: bootstrap seed.
        reader_threshold: a clinician calls HT at p >= this.
        ceiling_threshold: a ceiling calls HT at p >= this.
        alpha: 1 - confidence level of the claims' intervals.

    Returns:
        ``metrics`` (long: rater, metric, value, low, high; calibration slope and intercept without
        interval), ``claims``, ``treatment`` (long, :func:`subgroup_metrics`), ``interaction``
        (:func:`auc_interaction`), ``scans`` (the test scans with every score).
    """
    # Every model on CTNet's scans (the clinical model could score a scan without an image array).
    image_scans = set(predictions["ctnet"]["scan_id"])
    models = {m: predictions[m][predictions[m]["scan_id"].isin(image_scans)] for m in MODELS}
    scans, scores, thresholds = rater_inputs(models, readers, "test", reader_threshold)
    reader_names = [r for r in scores if r not in MODELS]
    ceilings = ceiling_scores(scans, truth_dir)
    all_scores = {**scores, **ceilings}
    all_thresholds = {**thresholds, **dict.fromkeys(ceilings, ceiling_threshold)}
    result = bootstrap_metrics(
        scans["y_true"], scans["patient_id"], all_scores, all_thresholds, n_bootstrap, seed
    )
    if reader_names:
        result = with_reader_average(result, reader_names, AVERAGE_READER)
    long = result.ci().drop(columns="n_undefined")
    # Calibration of each probability; the clinicians' as their mean probability per scan.
    probabilities = {r: s for r, s in all_scores.items() if r not in reader_names}
    if reader_names:
        probabilities[AVERAGE_READER] = np.mean([scores[r] for r in reader_names], axis=0)
    calibration = []
    for rater, probability in probabilities.items():
        fit = calibration_slope_intercept(scans["y_true"].to_numpy(), probability)
        calibration += [
            (rater, "calibration_slope", fit.slope),
            (rater, "calibration_intercept", fit.intercept),
        ]
    long = pd.concat(
        [long, pd.DataFrame(calibration, columns=["rater", "metric", "value"])], ignore_index=True
    )
    groups = treatment_groups(clinical)
    treatment = subgroup_metrics(
        scans, scores, thresholds, groups, reader_names, AVERAGE_READER, n_bootstrap, seed
    )
    interaction = auc_interaction(scans, scores, groups, list(MODELS))
    per_scan = pd.concat([scans, pd.DataFrame({f"p_{r}": s for r, s in all_scores.items()})], axis=1)
    return {
        "metrics": long,
        "claims": image_clinical_claims(scans, all_scores, alpha),
        "treatment": treatment,
        "interaction": interaction,
        "scans": per_scan,
    }


def rater_order(raters: Sequence[str]) -> list[str]:
    """The table's row order: clinical, CTNet, fusion, clinicians, ceilings (those present)."""
    order = [*MODELS, AVERAGE_READER, IMAGE_CEILING, FULL_CEILING]
    return [r for r in order if r in set(raters)]
