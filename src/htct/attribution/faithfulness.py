"""Faithfulness: does the evidence a map shows move the model when it is taken away?

Deletion test: per scan, the top-attributed brain region (the `fraction` of the brain's voxels with
the highest attribution) is replaced by healthy tissue (the baseline of
:mod:`htct.attribution.perturbation`) and the logit drop, f(x) - f(x deleted), is compared with the
drop for compact random brain regions of the same volume (the brain voxels nearest a random brain
voxel). A map that shows what the model uses moves the logit more than a random region of the same
size: a one-sided paired Wilcoxon signed-rank test over scans (Samek et al. 2017 delete the most
relevant regions first; the random region of equal volume is the control).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from htct.attribution.perturbation import tissue_baseline

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
