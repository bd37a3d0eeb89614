"""Where an attribution map's evidence falls, scored against the right chance level.

Per scan (:func:`localisation_scores`), from the map's positive part (the evidence that raises the
HT logit):

- **brain share**: the share of the evidence inside the intracranial mask (the rest is on the skull,
  scalp or air). A random-weight network already puts a position-dependent share there (its maps are
  centre-weighted blobs), so the chance level is the share the same method gets on randomly
  initialised networks (:mod:`htct.attribution.sanity`), not 0.5 and not the brain's share of the
  volume.
- **lesion enrichment**: the lesion's share of the *in-brain* evidence over the lesion's share of
  the brain's voxels (a map spread evenly over the brain scores 1). Comparing attention inside the
  head with the lesion's share of *all* voxels (skull, scalp and air included) understates the
  chance level about 3-4-fold.
- **pointing game** (Zhang et al., IJCV 2018) with tolerance: a hit when the map's peak lies within
  +-1 slice and +-2 pixels of the lesion; the chance level is the share of the brain within that
  tolerance of the lesion (where a uniformly random in-brain peak would land).

Over scans (:func:`summarise_localisation`) each metric gets a patient-bootstrap 95% CI (scans of a
patient resampled together, :mod:`htct.evaluate.bootstrap`), a one-sided p-value against its
chance level and a verdict against the goal of issue 18 (:data:`GOALS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, stats

from htct.evaluate.bootstrap import (
    bootstrap_patient_draws,
    draws_to_counts,
    patient_codes,
    percentile_ci,
    scan_weights,
)

POINTING_TOLERANCE = (1, 2, 2)
"""Pointing-game tolerance in voxels: slices, rows, columns."""

GOALS = {"lesion_enrichment": 3.0, "pointing_hit": 0.40}
"""Issue 18's goals: lesion enrichment >= 3x the in-brain chance (CI lower bound above 1x);
pointing hit rate >= 40% (and above its chance level, one-sided p < 0.05)."""

ALPHA = 0.05


def attention_mass(
    heatmap: ArrayLike, brain_mask: ArrayLike, lesion_mask: ArrayLike | None = None
) -> dict[str, float]:
    """Share of a non-negative heatmap's total mass inside the brain, outside it, and in the lesion.

    Args:
        heatmap: non-negative ``[D, H, W]`` map (e.g. from :func:`htct.attribution.gradcam`).
        brain_mask: intracranial mask, same shape (``brain_mask.npy`` row).
        lesion_mask: lesion mask, same shape (synthetic cohort only); None gives ``lesion`` NaN.

    Returns:
        ``brain``, ``skull_or_outside`` (= 1 - brain), ``lesion`` (fractions of the total mass; NaN
        when the map is all zeros), ``lesion_volume_share`` (lesion voxels / all voxels) and
        ``lesion_brain_share`` (lesion voxels in the brain / brain voxels: the in-brain chance level).
    """
    heat = np.asarray(heatmap, dtype=np.float64)
    brain = np.asarray(brain_mask) > 0
    if heat.shape != brain.shape:
        raise ValueError(f"heatmap {heat.shape} and brain_mask {brain.shape} differ in shape")
    if np.any(heat < 0):
        raise ValueError("heatmap must be non-negative")
    lesion = None if lesion_mask is None else np.asarray(lesion_mask) > 0
    if lesion is not None and lesion.shape != heat.shape:
        raise ValueError(f"heatmap {heat.shape} and lesion_mask {lesion.shape} differ in shape")
    total = heat.sum()
    if total <= 0:
        brain_share = lesion_share = np.nan
    else:
        brain_share = heat[brain].sum() / total
        lesion_share = np.nan if lesion is None else heat[lesion].sum() / total
    return {
        "brain": float(brain_share),
        "skull_or_outside": float(1.0 - brain_share),
        "lesion": float(lesion_share),
        "lesion_volume_share": float(np.nan if lesion is None else lesion.mean()),
        "lesion_brain_share": float(
            np.nan if lesion is None or not brain.any() else (lesion & brain).sum() / brain.sum()
        ),
    }


def peak_voxel(evidence: NDArray) -> tuple[int, ...] | None:
    """The map's maximum; among tied maxima (a patch-wise map is flat over a patch) the one nearest
    their centroid, so that a flat patch points at its centre, not at its first corner. None for an
    all-zero map."""
    peak = evidence.max()
    if peak <= 0:
        return None
    tied = np.argwhere(evidence >= peak * (1 - 1e-6))
    nearest = np.argmin(((tied - tied.mean(axis=0)) ** 2).sum(axis=1))
    return tuple(int(i) for i in tied[nearest])


def near_lesion(
    lesion: NDArray[np.bool_], tolerance: Sequence[int] = POINTING_TOLERANCE
) -> NDArray[np.bool_]:
    """The lesion dilated by a box of +-tolerance voxels per axis (slices, rows, columns)."""
    structure = np.ones(tuple(2 * t + 1 for t in tolerance), dtype=bool)
    return ndimage.binary_dilation(lesion, structure=structure)


def localisation_scores(
    attribution: ArrayLike,
    brain_mask: ArrayLike,
    lesion_mask: ArrayLike | None,
    tolerance: Sequence[int] = POINTING_TOLERANCE,
) -> dict[str, float]:
    """Brain share, lesion share of the in-brain evidence and pointing hit of one scan's map.

    Args:
        attribution: signed ``[D, H, W]`` map (positive = raises the HT logit); its positive part is
            scored.
        brain_mask: intracranial mask.
        lesion_mask: lesion mask or None (no lesion scores).
        tolerance: pointing-game tolerance (slices, rows, columns).

    Returns:
        ``brain_share``, ``lesion_share`` (lesion evidence / in-brain evidence), ``lesion_chance``
        (lesion voxels / brain voxels), ``enrichment`` (their ratio), ``pointing_hit`` (1.0 / 0.0),
        ``pointing_chance`` (brain voxels within tolerance of the lesion / brain voxels); NaN where
        undefined (no evidence, no lesion in the brain).
    """
    evidence = np.maximum(np.asarray(attribution, dtype=np.float64), 0.0)
    brain = np.asarray(brain_mask) > 0
    if evidence.shape != brain.shape:
        raise ValueError(f"attribution {evidence.shape} and brain_mask {brain.shape} differ in shape")
    total, in_brain = evidence.sum(), evidence[brain].sum()
    scores = {"brain_share": in_brain / total if total > 0 else np.nan}
    nan = dict.fromkeys(
        ("lesion_share", "lesion_chance", "enrichment", "pointing_hit", "pointing_chance"), np.nan
    )
    lesion = None if lesion_mask is None else (np.asarray(lesion_mask) > 0) & brain
    if lesion is None or not lesion.any():
        return {**scores, **nan}
    if lesion.shape != brain.shape:
        raise ValueError(f"lesion_mask {lesion.shape} and brain_mask {brain.shape} differ in shape")
    near = near_lesion(lesion, tolerance)
    lesion_chance = lesion.sum() / brain.sum()
    lesion_share = evidence[lesion].sum() / in_brain if in_brain > 0 else np.nan
    peak = peak_voxel(evidence)
    return {
        **scores,
        "lesion_share": lesion_share,
        "lesion_chance": lesion_chance,
        "enrichment": lesion_share / lesion_chance,
        "pointing_hit": np.nan if peak is None else float(near[peak]),
        "pointing_chance": (near & brain).sum() / brain.sum(),
    }


def poisson_binomial_tail(probabilities: ArrayLike, k: int) -> float:
    """P(at least k successes) of independent trials with the given success probabilities (exact)."""
    distribution = np.array([1.0])
    for p in np.asarray(probabilities, dtype=np.float64):
        distribution = np.convolve(distribution, [1.0 - p, p])
    return float(min(1.0, distribution[k:].sum()))


def bootstrap_weights(patient_ids: ArrayLike, n_bootstrap: int, seed: int) -> NDArray[np.float64]:
    """``[B, n_scans]`` patient-bootstrap scan weights (a patient's scans share its count)."""
    codes, patients = patient_codes(patient_ids)
    draws = bootstrap_patient_draws(len(patients), n_bootstrap, seed)
    return scan_weights(draws_to_counts(draws, len(patients)), codes)


def _row(
    metric: str, n: int, estimate: float, replicates: NDArray, chance: float, p: float, verdict: str
) -> dict:
    low, high = percentile_ci(replicates[:, None], ALPHA) if len(replicates) else (np.array([np.nan]),) * 2
    return {
        "metric": metric,
        "n_scans": int(n),
        "estimate": float(estimate),
        "lower": float(low[0]),
        "upper": float(high[0]),
        "chance": float(chance),
        "p_value": float(p),
        "verdict": verdict,
    }


def summarise_localisation(
    per_scan: pd.DataFrame,
    random_brain_shares: Sequence[float] | None = None,
    brain_share_applicable: bool = True,
    n_bootstrap: int = 2000,
    seed: int = 2026,
) -> pd.DataFrame:
    """Localisation metrics over scans with CIs, p-values and verdicts (one method, one model).

    Args:
        per_scan: one row per scan with ``patient_id`` and the columns of :func:`localisation_scores`;
            with a ``visible`` column (synthetic truth) the lesion metrics use the scans whose infarct
            is visible only.
        random_brain_shares: the mean brain share of the same method on each random-weight network
            (the brain share's chance level); None or empty: brain share without a verdict.
        brain_share_applicable: False for methods whose maps are zero outside the brain by
            construction (healthy-tissue baselines): brain share is then ``not_applicable``.
        n_bootstrap: patient-bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        Rows ``metric, n_scans, estimate, lower, upper, chance, p_value, verdict`` for
        ``lesion_enrichment``, ``pointing_hit`` and ``brain_share``.

    The verdicts: enrichment passes at >= 3x with the CI's lower bound above 1x; pointing at a hit
    rate >= 40% that beats its chance level (exact Poisson-binomial test, p < 0.05); brain share
    when its CI's lower bound lies above the largest share of the random-weight networks.
    """
    rows = []
    lesion = per_scan.dropna(subset=["lesion_share", "lesion_chance"])
    if "visible" in lesion.columns:  # the infarct can be looked at only where it shows (fig. 3a)
        lesion = lesion[lesion["visible"].astype(str).str.lower() == "true"]
    if len(lesion):
        weights = bootstrap_weights(lesion["patient_id"], n_bootstrap, seed)
        share, chance = lesion["lesion_share"].to_numpy(), lesion["lesion_chance"].to_numpy()
        estimate = share.sum() / chance.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates = (weights @ share) / (weights @ chance)
        difference = share - chance
        p = stats.wilcoxon(difference, alternative="greater").pvalue if np.any(difference != 0) else 1.0
        row = _row("lesion_enrichment", len(lesion), estimate, replicates, 1.0, p, "fail")
        row["verdict"] = "pass" if estimate >= GOALS["lesion_enrichment"] and row["lower"] > 1.0 else "fail"
        rows.append(row)
    else:
        rows.append(_not_applicable("lesion_enrichment", 1.0))
    pointing = lesion.dropna(subset=["pointing_hit", "pointing_chance"])
    if len(pointing):
        weights = bootstrap_weights(pointing["patient_id"], n_bootstrap, seed)
        hits, chance = pointing["pointing_hit"].to_numpy(), pointing["pointing_chance"].to_numpy()
        replicates = (weights @ hits) / weights.sum(axis=1)
        p = poisson_binomial_tail(chance, int(hits.sum()))
        verdict = "pass" if hits.mean() >= GOALS["pointing_hit"] and p < ALPHA else "fail"
        rows.append(_row("pointing_hit", len(pointing), hits.mean(), replicates, chance.mean(), p, verdict))
    else:
        rows.append(_not_applicable("pointing_hit", np.nan))
    brain = per_scan.dropna(subset=["brain_share"])
    randoms = np.asarray([] if random_brain_shares is None else random_brain_shares, dtype=np.float64)
    randoms = randoms[~np.isnan(randoms)]
    if not brain_share_applicable or not len(brain):
        rows.append(_not_applicable("brain_share", 1.0 if not brain_share_applicable else np.nan))
    else:
        weights = bootstrap_weights(brain["patient_id"], n_bootstrap, seed)
        values = brain["brain_share"].to_numpy()
        replicates = (weights @ values) / weights.sum(axis=1)
        estimate = values.mean()
        if len(randoms):
            p = (1 + np.sum(randoms >= estimate)) / (1 + len(randoms))
            row = _row("brain_share", len(brain), estimate, replicates, randoms.mean(), p, "fail")
            row["verdict"] = "pass" if row["lower"] > randoms.max() else "fail"
        else:
            row = _row("brain_share", len(brain), estimate, replicates, np.nan, np.nan, "not_applicable")
        rows.append(row)
    return pd.DataFrame(rows)


def _not_applicable(metric: str, chance: float) -> dict:
    return {
        "metric": metric,
        "n_scans": 0,
        "estimate": np.nan,
        "lower": np.nan,
        "upper": np.nan,
        "chance": chance,
        "p_value": np.nan,
        "verdict": "not_applicable",
    }
