"""Faithfulness: does the evidence a map shows move the model when it is taken away?

Deletion test: per scan, the top-attributed brain region (the `fraction` of the brain's voxels with
the highest attribution) is replaced by healthy tissue (the baseline of
:mod:`htct.attribution.perturbation`) and the logit drop, f(x) - f(x deleted), is compared with the
drop for compact random brain regions of the same volume (the brain voxels nearest a random brain
voxel). A map that shows what the model uses moves the logit more than a random region of the same
size: a one-sided paired Wilcoxon signed-rank test over scans (Samek et al. 2017 delete the most
relevant regions first; the random region of equal volume is the control).

Counterfactual test (input: ``results/evaluation/counterfactuals.tsv`` of the counterfactual stage,
one row per test scan, factor and model variant; the synthetic generator renders the same scan
without the factor): ``delta_logit`` is the model's logit without the infarct minus with it,
``oracle_delta_logit`` the same for the truth's image-only risk. Removing a large infarct lowers the
oracle's risk; removing a small visible one raises it (to the risk of a scan where the infarct is
not visible yet), so the sign of Delta varies between scans.

- :func:`uses_infarct`: the variant's Delta ranks like the oracle's and is not negligible;
  ``undecided`` without counterfactuals (a real cohort, or a run without the counterfactual stage).
- :func:`enrichment_vs_counterfactual`: a map's positive part is the evidence that *raises* the
  logit, so per scan the lesion enrichment should rank like the logit drop on removing the infarct
  (-Delta): goal Spearman >= 0.6.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from htct.attribution.counterfactual import MIN_MEAN_ABS_DELTA, MIN_SPEARMAN, uses_factor
from htct.attribution.perturbation import tissue_baseline
from htct.errors import HTCTInputError

if TYPE_CHECKING:
    from torch import nn

ALPHA = 0.05


def top_region(attribution: NDArray, brain_mask: NDArray, n_voxels: int) -> NDArray[np.bool_]:
    """The `n_voxels` brain voxels with the highest attribution (ties by voxel order)."""
    brain = np.flatnonzero(np.asarray(brain_mask).ravel() > 0)
    values = np.asarray(attribution, dtype=np.float64).ravel()[brain]
    chosen = brain[np.argsort(-values, kind="stable")[:n_voxels]]
    region = np.zeros(np.asarray(brain_mask).size, dtype=bool)
    region[chosen] = True
    return region.reshape(np.shape(brain_mask))


def random_region(brain_mask: NDArray, n_voxels: int, rng: np.random.Generator) -> NDArray[np.bool_]:
    """A compact random brain region: the `n_voxels` brain voxels nearest a random brain voxel."""
    coordinates = np.argwhere(np.asarray(brain_mask) > 0)
    centre = coordinates[rng.integers(len(coordinates))]
    distance = ((coordinates - centre) ** 2).sum(axis=1)
    chosen = coordinates[np.argsort(distance, kind="stable")[:n_voxels]]
    region = np.zeros(np.shape(brain_mask), dtype=bool)
    region[tuple(chosen.T)] = True
    return region


def deletion_test(
    model: nn.Module,
    volumes: NDArray,
    brain_masks: NDArray,
    rows: Sequence[int],
    maps: NDArray,
    fraction: float = 0.02,
    n_random: int = 2,
    seed: int = 2026,
) -> pd.DataFrame:
    """Logit drop when the top-attributed region, or random regions of its volume, turn healthy.

    Args:
        model: the model (or fold ensemble), in eval mode.
        volumes, brain_masks: the arrays.
        rows: array rows; `maps` holds their maps in this order.
        maps: ``[len(rows), D, H, W]`` signed maps of one method.
        fraction: region volume as a share of the scan's brain voxels.
        n_random: random regions per scan (their drops are averaged).
        seed: seed of the random regions (the same regions for every method).

    Returns:
        One row per scan: ``row, logit, drop_top, drop_random, n_voxels``.
    """
    import torch

    rng = np.random.default_rng(seed)
    records = []
    for k, row in enumerate(int(r) for r in rows):
        brain = np.asarray(brain_masks[row]) > 0
        n_voxels = max(1, round(fraction * brain.sum()))
        regions = [top_region(maps[k], brain, n_voxels)]
        regions += [random_region(brain, n_voxels, rng) for _ in range(n_random)]
        x = torch.from_numpy(np.asarray(volumes[row : row + 1], dtype=np.float32))
        baseline = tissue_baseline(x, torch.from_numpy(brain[None].astype(np.uint8)))
        variants = [x]
        for region in regions:
            where = torch.from_numpy(region)[None, None].expand_as(x)
            variants.append(torch.where(where, baseline, x))
        with torch.no_grad():
            logits = model.eval()(torch.cat(variants)).float()[:, 0].numpy().astype(np.float64)
        drops = logits[0] - logits[1:]
        records.append((row, logits[0], drops[0], drops[1:].mean(), n_voxels))
    return pd.DataFrame(records, columns=["row", "logit", "drop_top", "drop_random", "n_voxels"])


def summarise_deletion(table: pd.DataFrame) -> dict[str, float | str | int]:
    """Paired one-sided Wilcoxon test that deleting the top region drops the logit more.

    Returns:
        ``n_scans, drop_top (median), drop_random (median), p_value, verdict`` (pass when p < 0.05).
    """
    difference = (table["drop_top"] - table["drop_random"]).to_numpy()
    if len(difference) < 2 or not np.any(difference != 0):
        p = np.nan
    else:
        p = float(stats.wilcoxon(difference, alternative="greater").pvalue)
    return {
        "n_scans": len(table),
        "drop_top": float(table["drop_top"].median()) if len(table) else np.nan,
        "drop_random": float(table["drop_random"].median()) if len(table) else np.nan,
        "p_value": p,
        "verdict": "pass" if p < ALPHA else ("not_applicable" if np.isnan(p) else "fail"),
    }


COLUMNS = ("scan_id", "factor", "model", "input", "delta_logit", "oracle_delta_logit")
MIN_SCANS = 5
# A variant uses the infarct when its logit change on removing it ranks like the oracle's and is not
# negligible: the counterfactual stage's criterion (htct.attribution.counterfactual.uses_factor),
# defined there once.
GOAL_SPEARMAN = 0.6
"""Issue 18's goal for per-scan lesion enrichment against the logit drop on removing the infarct."""


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
    """Whether a model variant uses the infarct, by the counterfactual test (:data:`MIN_SPEARMAN`,
    :data:`MIN_MEAN_ABS_DELTA`).

    Args:
        counterfactuals: :func:`read_counterfactuals` table or None.
        model: registry name (``ctnet``).
        input_kind: ``full_head`` or ``skull_stripped``.

    Returns:
        ``model, input, uses_infarct`` (``true``/``false``/``undecided``), ``reason`` (the figures),
        ``n_scans, mean_delta, mean_abs_delta, spearman``.
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
    rho = (
        float(stats.spearmanr(delta, oracle).statistic)
        if np.ptp(delta) > 0 and np.ptp(oracle) > 0
        else np.nan
    )
    mean_abs = float(np.abs(delta).mean())
    uses = uses_factor(pd.Series({"spearman": rho, "mean_abs_delta": mean_abs}))
    reason = (
        f"removing the infarct changes the logit by {delta.mean():+.2f} on average, mean |delta| "
        f"{mean_abs:.2f} (needed: >= {MIN_MEAN_ABS_DELTA}); Spearman with the oracle's delta {rho:.2f} "
        f"(needed: >= {MIN_SPEARMAN}); n = {len(delta)} scans"
    )
    return {
        **out,
        "uses_infarct": "true" if uses else "false",
        "reason": reason,
        "n_scans": len(delta),
        "mean_delta": float(delta.mean()),
        "mean_abs_delta": mean_abs,
        "spearman": rho,
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
