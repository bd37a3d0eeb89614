"""The repeats' names and files, for the workflow (rules/repeats.smk parses them; light: no numpy).

Repeat ``splitI_seedJ`` draws its split with ``split.seed + I`` and trains with ``train.seed + J``;
scope ``run`` is the default run's ``repeats.splits x repeats.seeds``, scope ``full`` the named
target's ``repeats.full_splits x repeats.full_seeds`` (the first is a subset of the second, so a
full run reuses the default run's repeats). The analysis is :mod:`htct.paper.repeats`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REPEAT_PATTERN = r"split\d+_seed\d+"
SPLIT_KINDS = ("patient", "image")
SCOPES = ("run", "full")
#: The spread's files of a scope (rule repeats_summary and repeats_figure).
SPREAD_FILES = ("spread.html", "spread.png", "holds.tsv")


def repeat_ids(n_splits: int, n_seeds: int) -> list[str]:
    """The repeats ``split1_seed1 ... split{n_splits}_seed{n_seeds}`` (none when n_splits is 0)."""
    return [f"split{i}_seed{j}" for i in range(1, n_splits + 1) for j in range(1, n_seeds + 1)]


def scope_repeats(repeats: Mapping, scope: str) -> list[str]:
    """The repeats of ``scope`` (``run`` or ``full``) under config ``repeats:``."""
    if scope == "run":
        return repeat_ids(repeats["splits"], repeats["seeds"])
    if scope == "full":
        return repeat_ids(repeats["full_splits"], repeats["full_seeds"])
    raise ValueError(f"repeat scope must be one of {SCOPES}, not {scope!r}")


def repeat_seeds(repeat: str, split_seed: int, train_seed: int) -> tuple[int, int]:
    """The split seed and the training seed of ``repeat``: the configured ones plus its numbers.

    Raises:
        ValueError: a name that is not ``splitI_seedJ``.
    """
    match = re.fullmatch(r"split(\d+)_seed(\d+)", repeat)
    if match is None:
        raise ValueError(f"repeat {repeat!r} is not named splitI_seedJ")
    return split_seed + int(match[1]), train_seed + int(match[2])


def repeat_train_config(repeat: str, config: Mapping) -> dict:
    """Config ``train:`` with the repeat's training seed."""
    _, seed = repeat_seeds(repeat, config["split"]["seed"], config["train"]["seed"])
    return {**config["train"], "seed": seed}


def repeat_split_seed(repeat: str, config: Mapping) -> int:
    """The repeat's split seed."""
    return repeat_seeds(repeat, config["split"]["seed"], config["train"]["seed"])[0]


def scope_files(repeats: Mapping, scope: str, name: str, kind: str = "patient") -> list[str]:
    """The file ``name`` of every repeat of ``scope`` and split ``kind``."""
    return [f"results/repeats/{kind}/{r}/{name}" for r in scope_repeats(repeats, scope)]


def scope_model_files(repeats: Mapping, scope: str, template: str) -> list[str]:
    """The training output ``template`` (a path in the repeat's folder with ``{model}``, e.g.
    ``models/{model}/epochs.tsv``) of every model of ``repeats.models`` in every patient-level
    repeat of ``scope``, model by model."""
    return [
        f for model in repeats["models"] for f in scope_files(repeats, scope, template.format(model=model))
    ]


def run_targets(repeats: Mapping) -> list[str]:
    """The default run's repeat outputs (none with repeats.splits 0; the leakage table when
    repeats.image_split)."""
    if not scope_repeats(repeats, "run"):
        return []
    targets = [f"results/repeats/run/{name}" for name in SPREAD_FILES]
    return targets + (["results/repeats/run/leakage.html"] if repeats["image_split"] else [])


def run_holds(repeats: Mapping) -> str | list:
    """The default run's "holds in k of n repeats" per claim, for the claims table (or nothing)."""
    return "results/repeats/run/holds.tsv" if scope_repeats(repeats, "run") else []
