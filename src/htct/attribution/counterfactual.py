"""What a model learnt, asked directly: its logit change when one image factor is removed from a scan.

The synthetic cohort's scans are re-rendered without the infarct, the hyperdense artery or
leukoaraiosis (``htct.synth.counterfactual``) and preprocessed with the original crops
(``htct.preprocess.build_arrays_like``). A model that reads a factor changes its logit when the
factor is removed, and in the direction of the image-only oracle's change (which is exact: it is
the risk model's). Removing a large infarct lowers the oracle's risk; removing a small one *raises*
it to the volume-averaged risk of a scan where the infarct is not visible, so the sign varies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logit
from scipy.stats import spearmanr

from htct.evaluate.bootstrap import bootstrap_patient_draws, draws_to_counts, patient_codes, scan_weights
from htct.names import variant_label

COLUMNS = (
    "patient_id", "scan_id", "split", "factor", "model", "input", "logit", "logit_counterfactual",
    "delta_logit", "oracle_logit", "oracle_logit_counterfactual", "oracle_delta_logit",
)  # fmt: skip


def _oracle_logit(p: pd.Series) -> np.ndarray:
    return logit(np.clip(p.to_numpy(dtype=float), 1e-9, 1 - 1e-9))


def delta_table(
    oracle: pd.DataFrame,
    index: pd.DataFrame,
    logits: np.ndarray,
    logits_counterfactual: np.ndarray,
    model: str,
    input_kind: str,
) -> pd.DataFrame:
    """One row per scan with the factor present: the model's and the oracle's logit change.

    Args:
        oracle: ``oracle.tsv`` of one factor (scan_id, patient_id, factor, present, p_image_scan,
            p_image_scan_counterfactual).
        index: the counterfactual arrays' index.tsv (row, scan_id, ...), aligned with the logits.
        logits: the model's logit on each original scan, in ``index`` order.
        logits_counterfactual: its logit on each counterfactual scan, in ``index`` order.
        model: the model's registry name.
        input_kind: "full_head" or "skull_stripped".

    Returns:
        The rows of :data:`COLUMNS` (split is "test").
    """
    table = index[["scan_id"]].copy()
    table["logit"] = np.asarray(logits, dtype=float)
    table["logit_counterfactual"] = np.asarray(logits_counterfactual, dtype=float)
    table = oracle.merge(table, on="scan_id", how="inner", validate="1:1")
    table = table[table["present"].astype(bool)].copy()
    table["split"] = "test"
    table["model"], table["input"] = model, input_kind
    table["delta_logit"] = table["logit_counterfactual"] - table["logit"]
    table["oracle_logit"] = _oracle_logit(table["p_image_scan"])
    table["oracle_logit_counterfactual"] = _oracle_logit(table["p_image_scan_counterfactual"])
    table["oracle_delta_logit"] = table["oracle_logit_counterfactual"] - table["oracle_logit"]
    return table[list(COLUMNS)].reset_index(drop=True)


def summarise(deltas: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 2026) -> pd.DataFrame:
    """Per factor and model: mean logit change with a patient-bootstrap 95% CI, and agreement with the oracle.

    Columns: factor, model, input, n_scans, n_patients, mean_delta, lower, upper, mean_abs_delta,
    spearman (of the model's change with the oracle's), sign_agreement (share of scans whose change
    has the oracle's sign), oracle_mean_delta, oracle_mean_abs_delta. The CI resamples patients (a
    patient's scans together), as the evaluation does.
    """
    rows = []
    for (factor, model, input_kind), group in deltas.groupby(["factor", "model", "input"], sort=False):
        delta = group["delta_logit"].to_numpy(dtype=float)
        oracle = group["oracle_delta_logit"].to_numpy(dtype=float)
        codes, patients = patient_codes(group["patient_id"].to_numpy())
        counts = draws_to_counts(bootstrap_patient_draws(len(patients), n_bootstrap, seed), len(patients))
        weights = scan_weights(counts, codes)  # [n_bootstrap, n_scans]
        replicates = (weights @ delta) / weights.sum(axis=1)
        lower, upper = np.percentile(replicates, [2.5, 97.5])
        spearman = float(spearmanr(delta, oracle).statistic) if len(group) > 2 else float("nan")
        rows.append(
            {
                "factor": factor,
                "model": model,
                "input": input_kind,
                "n_scans": len(group),
                "n_patients": len(patients),
                "mean_delta": float(delta.mean()),
                "lower": float(lower),
                "upper": float(upper),
                "mean_abs_delta": float(np.abs(delta).mean()),
                "spearman": spearman,
                "sign_agreement": float((np.sign(delta) == np.sign(oracle)).mean()),
                "oracle_mean_delta": float(oracle.mean()),
                "oracle_mean_abs_delta": float(np.abs(oracle).mean()),
            }
        )
    return pd.DataFrame(rows)


#: The paper-scale goal for a model that reads a factor (issue: Spearman of its change with the
#: oracle's at least this, and a mean absolute logit change at least MIN_MEAN_ABS_DELTA).
MIN_SPEARMAN = 0.5
MIN_MEAN_ABS_DELTA = 0.3


def uses_factor(summary_row: pd.Series) -> bool:
    """Whether a model responds to a factor as the oracle does (both goals met)."""
    return bool(
        summary_row["spearman"] >= MIN_SPEARMAN and summary_row["mean_abs_delta"] >= MIN_MEAN_ABS_DELTA
    )


def counterfactual_deltas(
    variants: list[dict], factors: list[str], root: str | Path = "results/counterfactuals"
) -> pd.DataFrame:
    """The logit changes of every model variant on every factor's counterfactual test scans.

    Args:
        variants: one dict per model: ``model`` (registry name), ``input`` (full_head or
            skull_stripped), ``model_dir`` (a trained model folder; k-fold folders load as the
            ensemble) and ``arrays`` (the folder of the arrays it was trained on).
        factors: the factors (each has ``{root}/{factor}/oracle.tsv`` and
            ``{root}/{factor}/{input}/`` arrays from :func:`htct.preprocess.build_arrays_like`).
        root: the counterfactuals folder.

    Returns:
        The rows of :data:`COLUMNS`, one per (scan with the factor, variant).
    """
    from htct.train.predict import load_trained_model, predict_logits

    root = Path(root)
    ids = {"scan_id": str, "patient_id": str}
    tables = []
    for variant in variants:
        model = load_trained_model(variant["model_dir"]).model
        volumes = np.load(Path(variant["arrays"]) / "volumes.npy", mmap_mode="r")
        for factor in factors:
            oracle = pd.read_csv(root / factor / "oracle.tsv", sep="\t", dtype=ids)
            arrays = root / factor / variant["input"]
            index = pd.read_csv(arrays / "index.tsv", sep="\t", dtype=ids)
            index = index[index["scan_id"].isin(oracle.loc[oracle["present"].astype(bool), "scan_id"])]
            counterfactual = np.load(arrays / "volumes.npy", mmap_mode="r")
            logits = predict_logits(model, volumes, index["reference_row"].to_numpy())
            logits_counterfactual = predict_logits(model, counterfactual, index["row"].to_numpy())
            tables.append(
                delta_table(oracle, index, logits, logits_counterfactual, variant["model"], variant["input"])
            )
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(COLUMNS))


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as the report shows it: one row per factor and model, the oracle's change beside it."""
    rows = []
    for row in summary.itertuples(index=False):
        rows.append(
            {
                "Factor removed": row.factor.replace("_", " "),
                "Model": variant_label(row.model, row.input),
                "Scans": row.n_scans,
                "Mean Δlogit (95% CI)": f"{row.mean_delta:+.3f} ({row.lower:+.3f} to {row.upper:+.3f})",
                "Mean |Δlogit|": f"{row.mean_abs_delta:.3f}",
                "Spearman with oracle Δ": "–" if np.isnan(row.spearman) else f"{row.spearman:.2f}",
                "Same sign as oracle": f"{100 * row.sign_agreement:.0f}%",
                "Oracle mean Δ (|Δ|)": f"{row.oracle_mean_delta:+.3f} ({row.oracle_mean_abs_delta:.3f})",
                "Uses the factor": "yes" if uses_factor(pd.Series(row._asdict())) else "no",
            }
        )
    return pd.DataFrame(rows).set_index(["Factor removed", "Model"])
