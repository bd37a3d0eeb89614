"""The counterfactual test: does the model use the infarct, and do the maps track how much?

Input: ``results/evaluation/counterfactuals.tsv`` (one row per scan, factor and model variant; the
synthetic generator renders the same scan without the factor): ``delta_logit`` is the model's logit
without the infarct minus with it, ``oracle_delta_logit`` the same for the truth's image-only risk.

- :func:`uses_infarct`: a variant uses the infarct when removing it lowers its logit (mean
  Delta <= -0.1 logit, one-sided Wilcoxon signed-rank p < 0.05) and the per-scan Delta tracks the
  oracle's (Spearman rho > 0, one-sided p < 0.05). Without counterfactuals (a real cohort, or a run
  without the counterfactual rule) the answer is ``undecided``.
- :func:`enrichment_vs_counterfactual`: per scan, the lesion enrichment of a map should rank like
  the logit drop on removing the infarct (-Delta): goal Spearman >= 0.6.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from htct.errors import HTCTInputError

COLUMNS = ("scan_id", "factor", "model", "input", "delta_logit", "oracle_delta_logit")
MIN_SCANS = 5
MIN_MEAN_DROP = 0.1
"""Smallest mean logit drop on removing the infarct that counts as use (a tenth of a logit)."""
GOAL_SPEARMAN = 0.6
ALPHA = 0.05


def read_counterfactuals(path: str | Path | None) -> pd.DataFrame | None:
    """The counterfactual table, or None when there is none (empty path).

    Raises:
        HTCTInputError: a column of :data:`COLUMNS` is missing.
    """
    if not path:
        return None
    table = pd.read_csv(path, sep="\t", dtype={"patient_id": str, "scan_id": str})
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise HTCTInputError(
            f"{path}: no column(s) {', '.join(missing)}; rerun the counterfactual rule that writes it "
            "(docs/attribution.md lists the columns)"
        )
    return table


def _rows(counterfactuals: pd.DataFrame, model: str, input_kind: str) -> pd.DataFrame:
    keep = (
        (counterfactuals["factor"] == "infarct")
        & (counterfactuals["model"] == model)
        & (counterfactuals["input"] == input_kind)
    )
    return counterfactuals[keep].dropna(subset=["delta_logit", "oracle_delta_logit"])


def uses_infarct(counterfactuals: pd.DataFrame | None, model: str, input_kind: str) -> dict[str, object]:
    """Whether a model variant uses the infarct, by the counterfactual test (module docstring).

    Args:
        counterfactuals: :func:`read_counterfactuals` table or None.
        model: registry name (``ctnet``).
        input_kind: ``full_head`` or ``skull_stripped``.

    Returns:
        ``model, input, uses_infarct`` (``true``/``false``/``undecided``), ``reason`` (the figures),
        ``n_scans, mean_delta, mean_abs_delta, spearman, p_delta, p_spearman``.
    """
    out: dict[str, object] = {"model": model, "input": input_kind}
    rows = None if counterfactuals is None else _rows(counterfactuals, model, input_kind)
    if rows is None or len(rows) < MIN_SCANS:
        reason = (
            "no counterfactuals (results/evaluation/counterfactuals.tsv not in this run)"
            if rows is None
            else f"{len(rows)} counterfactual scans (< {MIN_SCANS})"
        )
        return {
            **out,
            "uses_infarct": "undecided",
            "reason": reason,
            "n_scans": 0 if rows is None else len(rows),
        }
    delta, oracle = rows["delta_logit"].to_numpy(), rows["oracle_delta_logit"].to_numpy()
    p_delta = float(stats.wilcoxon(delta, alternative="less").pvalue) if np.any(delta != 0) else 1.0
    if np.ptp(delta) > 0 and np.ptp(oracle) > 0:
        correlation = stats.spearmanr(delta, oracle, alternative="greater")
        rho, p_rho = float(correlation.statistic), float(correlation.pvalue)
    else:
        rho, p_rho = np.nan, 1.0
    lowers = delta.mean() <= -MIN_MEAN_DROP and p_delta < ALPHA
    tracks = rho > 0 and p_rho < ALPHA
    reason = (
        f"removing the infarct moves the logit by {delta.mean():+.2f} on average (mean |delta| "
        f"{np.abs(delta).mean():.2f}, Wilcoxon p = {p_delta:.2g}, n = {len(delta)}); Spearman with the "
        f"oracle's delta {rho:.2f} (p = {p_rho:.2g})"
    )
    return {
        **out,
        "uses_infarct": "true" if lowers and tracks else "false",
        "reason": reason,
        "n_scans": len(delta),
        "mean_delta": float(delta.mean()),
        "mean_abs_delta": float(np.abs(delta).mean()),
        "spearman": rho,
        "p_delta": p_delta,
        "p_spearman": p_rho,
    }


def enrichment_vs_counterfactual(
    per_scan: pd.DataFrame, counterfactuals: pd.DataFrame | None, model: str, input_kind: str
) -> dict[str, object]:
    """Spearman correlation of per-scan lesion enrichment with the logit drop on removing the infarct.

    Args:
        per_scan: ``scan_id, enrichment`` of one method.
        counterfactuals: :func:`read_counterfactuals` table or None.
        model, input_kind: the variant.

    Returns:
        ``n_scans, spearman, p_value, verdict`` (pass at rho >= 0.6 with one-sided p < 0.05;
        ``not_applicable`` without counterfactuals or with fewer than 5 scans in common).
    """
    if counterfactuals is None:
        return {"n_scans": 0, "spearman": np.nan, "p_value": np.nan, "verdict": "not_applicable"}
    rows = _rows(counterfactuals, model, input_kind)[["scan_id", "delta_logit"]]
    joined = per_scan[["scan_id", "enrichment"]].dropna().merge(rows, on="scan_id")
    if len(joined) < MIN_SCANS or joined["enrichment"].nunique() < 2 or joined["delta_logit"].nunique() < 2:
        return {"n_scans": len(joined), "spearman": np.nan, "p_value": np.nan, "verdict": "not_applicable"}
    correlation = stats.spearmanr(joined["enrichment"], -joined["delta_logit"], alternative="greater")
    rho, p = float(correlation.statistic), float(correlation.pvalue)
    return {
        "n_scans": len(joined),
        "spearman": rho,
        "p_value": p,
        "verdict": "pass" if rho >= GOAL_SPEARMAN and p < ALPHA else "fail",
    }
