"""Sanity check of attribution maps: cascading model-parameter randomisation (Adebayo et al. 2018).

The network's layers are re-initialised from the top (the HT predictor) down to the stem, one block
at a time, and after each step the map of the randomised network is compared with the trained
network's map. A method whose maps stay similar explains the image (edges, position), not the
model. Similarity is the Spearman rank correlation of the two maps' positive parts (the evidence that
is drawn and scored) over the brain voxels: SSIM, the paper's usual choice, is fooled by the shared
empty background of two maps. The verdict (:data:`GOAL_SPEARMAN`) is on the mean over scans and seeds
after randomising the top block and after randomising all blocks.

Re-initialisation uses each layer's own ``reset_parameters`` (PyTorch's default initialisers:
Kaiming-uniform convolutions and linear layers, batch norms reset to the identity with fresh
running statistics), seeded per seed and block, so the randomised networks are reproducible. CTNet's
own initialisation would zero the HT predictor, whose maps are then all zero. Written by hand
(~40 lines): captum has no randomisation test, and quantus' ``ModelParameterRandomisation`` would
bring a new dependency tree for a loop this short.

The fully randomised networks also give the chance level of the brain share
(:mod:`htct.attribution.localisation`): what a network with random weights, and so no knowledge of
the brain, already puts inside the brain by position alone.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from htct.attribution.methods import Method, attribution_maps

if TYPE_CHECKING:
    from torch import nn

GOAL_SPEARMAN = 0.2
"""Issue 18's goal: Spearman <= 0.2 after randomising the top layer and after randomising all layers."""


def _members(model: nn.Module) -> list[nn.Module]:
    members = getattr(model, "members", None)
    return list(members) if members is not None else [model]


def cascade_blocks(model: nn.Module) -> list[str]:
    """The model's blocks from the top (output) down, as dotted module names.

    The top-level children in reverse order of definition; a child that is a sequence of sequences
    (CTNet's ``stages``) contributes its inner blocks (each residual block). Blocks without
    parameters (CTNet's fixed input window) are left out. For a fold ensemble, the blocks of its
    members (which share one architecture).
    """
    from torch import nn

    member = _members(model)[0]
    blocks: list[str] = []
    seen: set[int] = set()
    for name, child in member.named_children():
        if id(child) in seen:  # an alias such as CTNet's cam_layer
            continue
        seen.add(id(child))
        inner = list(child.named_children()) if isinstance(child, nn.Sequential) else []
        if inner and all(isinstance(grandchild, nn.Sequential) for _, grandchild in inner):
            for stage_name, stage in inner:
                seen.add(id(stage))
                blocks += [f"{name}.{stage_name}.{block_name}" for block_name, _ in stage.named_children()]
        else:
            blocks.append(name)
    return [
        block for block in reversed(blocks) if any(True for _ in member.get_submodule(block).parameters())
    ]


def randomised(model: nn.Module, blocks: Sequence[str], seed: int) -> nn.Module:
    """A copy of `model` with `blocks` re-initialised (every member of a fold ensemble alike).

    Block ``k`` of :func:`cascade_blocks` is always drawn from the same seed (``seed``, ``k``), so
    the cascade's steps randomise each block once and the fully randomised network of a seed is the
    same network whichever way it was reached.
    """
    import torch

    order = {block: k for k, block in enumerate(cascade_blocks(model))}
    copied = copy.deepcopy(model).eval()
    for member_index, member in enumerate(_members(copied)):
        for block in blocks:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(10_000 * seed + 100 * order[block] + member_index)
                for module in member.get_submodule(block).modules():
                    if hasattr(module, "reset_parameters"):
                        module.reset_parameters()
    return copied


def masked_spearman(original: NDArray, randomised_map: NDArray, mask: NDArray) -> float:
    """Spearman correlation of two maps over the mask.

    NaN when the trained network's map is constant there (it ranks nothing, so there is nothing to
    compare); 0 when only the randomised network's map is constant (it shares no ranking).
    """
    a, b = np.asarray(original)[mask > 0], np.asarray(randomised_map)[mask > 0]
    if a.size < 3 or np.ptp(a) == 0:
        return float("nan")
    if np.ptp(b) == 0:
        return 0.0
    return float(stats.spearmanr(a, b).statistic)


def cascading_randomisation(
    model: nn.Module,
    method: Method,
    volumes: NDArray,
    brain_masks: NDArray,
    rows: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    steps: str = "cascade",
    original: NDArray | None = None,
) -> tuple[pd.DataFrame, dict[int, NDArray]]:
    """Spearman correlation of the trained network's maps with those of the randomised networks.

    Args:
        model: trained model (or fold ensemble).
        method: attribution method.
        volumes, brain_masks: the arrays (``[N, C, D, H, W]``, ``[N, D, H, W]``).
        rows: array rows to compare on.
        seeds: randomisation seeds (>= 3 for the verdict).
        steps: ``"cascade"`` (every block, top down) or ``"ends"`` (the top block only, and all
            blocks: the two steps the verdict uses; for methods that cost many forward passes).
        original: the trained model's maps of `rows`, if already computed.

    Returns:
        ``(table, random_maps)``: the table has one row per seed, step and scan (``seed, step,
        block, n_randomised, row, spearman``; step 1 = the top block, the last step = all blocks);
        ``random_maps`` maps each seed to the fully randomised network's maps of `rows`.
    """
    blocks = cascade_blocks(model)
    rows = [int(r) for r in rows]
    if original is None:
        original = attribution_maps(model, method, volumes, brain_masks, rows)
    counts = range(1, len(blocks) + 1) if steps == "cascade" else sorted({1, len(blocks)})
    records, random_maps = [], {}
    for seed in seeds:
        for n_randomised in counts:
            maps = attribution_maps(
                randomised(model, blocks[:n_randomised], seed), method, volumes, brain_masks, rows
            )
            if n_randomised == len(blocks):
                random_maps[seed] = maps
            for k, row in enumerate(rows):
                # The evidence as drawn and scored (positive part): a sign-flipped map shows other regions.
                rho = masked_spearman(np.maximum(original[k], 0), np.maximum(maps[k], 0), brain_masks[row])
                records.append((seed, n_randomised, blocks[n_randomised - 1], n_randomised, row, rho))
    table = pd.DataFrame(records, columns=["seed", "step", "block", "n_randomised", "row", "spearman"])
    return table, random_maps


def summarise_randomisation(table: pd.DataFrame) -> pd.DataFrame:
    """Mean Spearman per step over scans and seeds, with the seeds' range, and the verdict.

    Returns:
        One row per step: ``step, block, n_randomised, n_seeds, n_scans, spearman (mean),
        spearman_min, spearman_max`` (range of the per-seed means; scans whose trained map is
        constant are left out), ``endpoint`` (``top``, ``all`` or empty) and ``verdict`` (at the
        endpoints: pass when the mean <= 0.2; ``not_applicable`` when no trained map ranks anything).
    """
    columns = [
        "step",
        "block",
        "n_randomised",
        "n_seeds",
        "n_scans",
        "spearman",
        "spearman_min",
        "spearman_max",
    ]
    if table.empty:
        return pd.DataFrame(columns=[*columns, "endpoint", "verdict"])
    per_seed = table.groupby(["step", "block", "n_randomised", "seed"])["spearman"].mean().reset_index()
    summary = per_seed.groupby(["step", "block", "n_randomised"]).agg(
        n_seeds=("seed", "nunique"),
        spearman=("spearman", "mean"),
        spearman_min=("spearman", "min"),
        spearman_max=("spearman", "max"),
    )
    summary = summary.reset_index()
    compared = table[table["spearman"].notna()].groupby("step")["row"].nunique()
    summary.insert(4, "n_scans", compared.reindex(summary["step"], fill_value=0).to_numpy())
    last = summary["n_randomised"].max()
    summary["endpoint"] = np.select(
        [summary["n_randomised"] == 1, summary["n_randomised"] == last], ["top", "all"], ""
    )
    judged = np.where(summary["spearman"] <= GOAL_SPEARMAN, "pass", "fail")
    judged = np.where(summary["spearman"].isna(), "not_applicable", judged)  # no trained map to compare
    summary["verdict"] = np.where(summary["endpoint"] != "", judged, "")
    return summary
