"""The attribution stage of the workflow: every method on one model variant, then the verdicts.

:func:`attribute_variant` runs the methods of :mod:`htct.attribution.methods` on one trained CTNet
and its arrays and returns the per-scan tables (localisation, deletion), the randomisation table,
the random networks' brain shares and the maps of figure 3's cases. :func:`summarise_variants`
turns the variants' tables and the counterfactual test into the tidy verdict tables the rule writes
(``results/attribution/*.tsv``, columns in docs/attribution.md).

Scan subsets (the stage must fit ~2 min on 2 CPU cores for ~150 validation and test scans of
28 x 64 x 64; see docs/attribution.md for the timings):

- the CAMs (one forward pass per scan) run on every validation and test scan;
- occlusion (one forward pass per brain patch, ~200 per scan) and Integrated Gradients (8 path
  points), and the deletion test of every method, on ``n_perturbation_scans`` scans drawn (seeded)
  from those with a visible lesion (or, without lesion masks, from all), test scans first;
- the randomisation cascade on the first ``n_sanity_scans`` of those for the CAMs, and on the first
  ``n_sanity_scans_expensive`` for occlusion and Integrated Gradients, with the top block and all
  blocks randomised only (the two steps of the verdict).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from htct.attribution.faithfulness import (
    deletion_test,
    enrichment_vs_counterfactual,
    summarise_deletion,
    uses_infarct,
)
from htct.attribution.localisation import localisation_scores, summarise_localisation
from htct.attribution.methods import Method, attribution_maps, methods
from htct.attribution.sanity import (
    cascade_blocks,
    cascading_randomisation,
    randomised,
    summarise_randomisation,
)
from htct.errors import HTCTInputError

log = logging.getLogger(__name__)

INPUT_KINDS = ("full_head", "skull_stripped")


@dataclass
class AttributionSettings:
    """config.yaml ``attribution:`` (defaults in schemas/config.schema.yaml; documented there)."""

    methods: Sequence[str] = ("gradcam", "pooled_cam", "occlusion", "integrated_gradients")
    occlusion_patch: Sequence[int] | str = "auto"
    ig_steps: int = 8
    n_perturbation_scans: int = 12
    n_sanity_scans: int = 4
    n_sanity_scans_expensive: int = 1
    randomisation_seeds: int = 3
    n_random_networks: int = 9
    deletion_fraction: float = 0.02
    n_random_regions: int = 2
    seed: int = 2026

    def method_table(self) -> dict[str, Method]:
        """The configured methods, in table order."""
        available = methods(self.occlusion_patch, self.ig_steps)
        unknown = [name for name in self.methods if name not in available]
        if unknown:
            raise ValueError(f"unknown attribution method(s) {unknown}; known: {', '.join(available)}")
        return {name: method for name, method in available.items() if name in self.methods}


@dataclass
class VariantResult:
    """Everything :func:`attribute_variant` measures on one model variant.

    Attributes:
        scans: one row per (method, scan): localisation scores and, on the perturbation subset,
            the deletion test (NaN elsewhere).
        randomisation: one row per (method, seed, step, scan): Spearman with the trained map.
        random_brain_share: one row per (method, seed): mean brain share of a random-weight network.
        case_maps: method -> ``[n_cases, D, H, W]`` maps of figure 3's cases.
        timing: one row per (method, part): wall-clock and CPU seconds.
    """

    scans: pd.DataFrame
    randomisation: pd.DataFrame
    random_brain_share: pd.DataFrame
    case_maps: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    timing: pd.DataFrame = field(default_factory=pd.DataFrame)


CROP_COLUMNS = ("z_first", "n_pad_before", "box_centre_i", "box_centre_j", "box_side_mm")
"""index.tsv columns that fix a scan's crop: equal in two array sets means the same voxel grid."""
IDS = {"patient_id": str, "scan_id": str}


class RowMap:
    """Rows of another array set, indexed by this array set's rows (``masks[row]``)."""

    def __init__(self, array: NDArray, rows: Mapping[int, int]):
        self.array, self.rows = array, dict(rows)

    def __getitem__(self, row: int) -> NDArray:
        return np.asarray(self.array[self.rows[int(row)]])


@dataclass
class VariantArrays:
    """One variant's arrays (memory maps) and index, with the lesion masks in its rows."""

    volumes: NDArray
    brain_masks: NDArray
    index: pd.DataFrame
    lesion_masks: RowMap | None

    def evaluation_scans(self, scans_tsv: str | Path, truth: pd.DataFrame | None) -> pd.DataFrame:
        """The validation and test scans: ``row, scan_id, patient_id, label, part`` (+ ``visible``)."""
        parts = pd.read_csv(scans_tsv, sep="\t", dtype=IDS)[["scan_id", "part"]]
        scans = self.index[["row", "scan_id", "patient_id", "label"]].merge(parts, on="scan_id")
        scans = scans[scans["part"].isin(["val", "test"])]
        if truth is not None and "visible" in truth.columns:
            scans = scans.merge(truth[["scan_id", "visible"]], on="scan_id", how="left")
        return scans.sort_values("row").reset_index(drop=True)


def load_variant_arrays(
    volumes: str | Path, brain_mask: str | Path, index: str | Path, lesion_mask: str | Path | None
) -> VariantArrays:
    """Memory-map a variant's arrays; the lesion masks (made for ``results/arrays``, whose
    ``index.tsv`` lies beside them) are matched to the variant's rows by scan_id.

    Raises:
        HTCTInputError: a scan is cropped differently in the two array sets (its lesion mask would
            not lie on its voxels).
    """
    variant_index = pd.read_csv(index, sep="\t", dtype=IDS)
    lesions = None
    if lesion_mask:
        lesion_index = pd.read_csv(Path(lesion_mask).with_name("index.tsv"), sep="\t", dtype=IDS)
        joined = variant_index.merge(lesion_index, on="scan_id", suffixes=("", "_lesion"))
        for column in (c for c in CROP_COLUMNS if c in variant_index.columns and c in lesion_index.columns):
            differs = ~np.isclose(joined[column].astype(float), joined[f"{column}_lesion"].astype(float))
            if differs.any():
                scan = joined.loc[differs, "scan_id"].iloc[0]
                raise HTCTInputError(
                    f"{index}: scan {scan} is cropped differently ({column}) from {lesion_mask}'s arrays; "
                    "rerun both preprocessing rules with one preprocess config"
                )
        lesions = RowMap(
            np.load(lesion_mask, mmap_mode="r"), dict(zip(joined["row"], joined["row_lesion"], strict=True))
        )
    return VariantArrays(
        volumes=np.load(volumes, mmap_mode="r"),
        brain_masks=np.load(brain_mask, mmap_mode="r"),
        index=variant_index,
        lesion_masks=lesions,
    )


def run_variant(
    model,
    arrays: VariantArrays,
    scans_tsv: str | Path,
    truth_dir: str | Path | None,
    settings: AttributionSettings,
) -> tuple[VariantResult, list[tuple[str, int, None]]]:
    """The rule's work for one variant: its validation and test scans, figure 3's cases
    (:func:`htct.figures.cases.choose_cases`: from the synthetic truth when there is one, else by
    this variant's predicted risk) and :func:`attribute_variant`.

    Returns:
        The result and the cases ``(title, row, None)``.
    """
    from htct.figures.cases import choose_cases
    from htct.train.predict import predict_logits, probabilities

    truth = pd.read_csv(Path(truth_dir) / "scans.tsv", sep="\t", dtype=IDS) if truth_dir else None
    scans = arrays.evaluation_scans(scans_tsv, truth)
    test = scans[scans["part"] == "test"]
    p_ht = None
    if truth is None:  # no lesion known: the cases are the test scans of highest and lowest predicted risk
        rows = test["row"].to_numpy()
        device = next(model.parameters()).device
        logits = predict_logits(model, arrays.volumes, rows, device=device)
        p_ht = dict(zip(rows.tolist(), probabilities(logits).tolist(), strict=True))
    cases = choose_cases(test, truth, p_ht)
    rows = [row for _, row, _ in cases]
    result = attribute_variant(
        model, arrays.volumes, arrays.brain_masks, arrays.lesion_masks, scans, rows, settings
    )
    return result, cases


def write_variant(
    result: VariantResult, arrays: VariantArrays, cases: Sequence[tuple[str, int, object]], output
) -> None:
    """Write a variant's tables (TSV) and figure 3's cases (NPZ: the cases' arrays and every method's
    map), to the paths of the rule's `output` (``scans, randomisation, random_brain_share, timing,
    cases``)."""
    for name in ("scans", "randomisation", "random_brain_share", "timing"):
        getattr(result, name).to_csv(getattr(output, name), sep="\t", index=False, na_rep="NA")
    rows = [int(row) for _, row, _ in cases]
    by_row = arrays.index.set_index("row")
    arrays_of_cases = {
        "titles": np.array([title for title, _, _ in cases], dtype=str),
        "rows": np.array(rows, dtype=np.int64),
        "scan_ids": np.array([by_row.loc[row, "scan_id"] for row in rows], dtype=str),
        "volumes": np.asarray(arrays.volumes[rows]) if rows else np.zeros((0,)),
        "brain": np.asarray(arrays.brain_masks[rows]) if rows else np.zeros((0,)),
    }
    if arrays.lesion_masks is not None and rows:
        arrays_of_cases["lesion"] = np.stack([arrays.lesion_masks[row] for row in rows])
    arrays_of_cases.update({f"map_{method}": maps for method, maps in result.case_maps.items()})
    with open(output.cases, "wb") as handle:  # np.savez would append .npz to a name without it
        np.savez_compressed(handle, **arrays_of_cases)


@dataclass
class StoredVariant:
    """A variant as the attribution rule wrote it: its tables and figure 3's cases."""

    tables: dict[str, pd.DataFrame]
    cases: dict[str, NDArray]


def read_variant(inputs, k: int) -> StoredVariant:
    """The `k`-th variant of the summary rule's inputs (lists ``variants`` (scans.tsv),
    ``randomisation``, ``random_brain_share``, ``cases``)."""
    tables = {
        "scans": pd.read_csv(inputs.variants[k], sep="\t", dtype=IDS),
        "randomisation": pd.read_csv(inputs.randomisation[k], sep="\t"),
        "random_brain_share": pd.read_csv(inputs.random_brain_share[k], sep="\t"),
    }
    with np.load(inputs.cases[k]) as stored:
        cases = {key: stored[key] for key in stored.files}
    return StoredVariant(tables=tables, cases=cases)


def prepare_model(model):
    """The model in eval mode and channels-last memory format, with its input converted to it too
    (oneDNN's 3D convolutions run ~1.5-2x faster so on CPU; same results up to rounding)."""

    from htct.train.loop import channels_last

    model, memory_format = channels_last(model.eval())
    if memory_format is not None:
        model.register_forward_pre_hook(
            lambda _module, args: (args[0].contiguous(memory_format=memory_format),)
        )
    return model


def perturbation_subset(
    scans: pd.DataFrame, lesion_masks: RowMap | NDArray | None, n: int, seed: int
) -> list[int]:
    """Rows for the costly methods: `n` drawn (seeded) from the scans with a visible lesion.

    The candidates are the scans with a visible lesion (``visible`` from the synthetic truth), else
    those with a lesion in their mask, else (no lesion masks, or none with a lesion) every scan.
    Test scans are drawn first (``part``): the counterfactual stage renders the test scans only, so
    the enrichment-vs-counterfactual test of occlusion and Integrated Gradients gets all `n`.

    Args:
        scans: ``row`` and optionally ``part`` and ``visible``.
        lesion_masks: the lesion masks (indexed by row) or None.
        n: how many rows.
        seed: seed of the draw.

    Returns:
        Sorted array rows.
    """
    candidates = scans
    if lesion_masks is not None:
        with_lesion = scans[[bool(np.asarray(lesion_masks[row]).any()) for row in scans["row"]]]
        if "visible" in with_lesion.columns:
            visible = with_lesion[with_lesion["visible"].astype(str).str.lower() == "true"]
            with_lesion = visible if len(visible) else with_lesion
        candidates = with_lesion if len(with_lesion) else scans
    rng = np.random.default_rng(seed)
    is_test = (
        candidates["part"].eq("test") if "part" in candidates.columns else pd.Series(False, candidates.index)
    )
    chosen: list[int] = []
    for group in (candidates[is_test], candidates[~is_test]):
        rows = group["row"].to_numpy()
        take = min(len(rows), n - len(chosen))
        chosen += [int(r) for r in rng.choice(rows, size=take, replace=False)] if take > 0 else []
    return sorted(chosen)


def _localisation_rows(
    maps: NDArray, rows: Sequence[int], brain_masks: NDArray, lesion_masks: NDArray | None
) -> list[dict[str, float]]:
    return [
        localisation_scores(maps[k], brain_masks[row], None if lesion_masks is None else lesion_masks[row])
        for k, row in enumerate(rows)
    ]


def attribute_variant(
    model,
    volumes: NDArray,
    brain_masks: NDArray,
    lesion_masks: NDArray | None,
    scans: pd.DataFrame,
    case_rows: Sequence[int],
    settings: AttributionSettings,
) -> VariantResult:
    """Run every configured method on one model variant (see the module docstring for the subsets).

    Args:
        model: trained CTNet or fold ensemble (eval mode).
        volumes, brain_masks, lesion_masks: the variant's arrays (lesion masks None for a real cohort).
        scans: the validation and test scans: ``row, scan_id, patient_id, part`` (and ``visible``).
        case_rows: array rows of figure 3's cases.
        settings: the stage's settings.

    Returns:
        The variant's tables and case maps.
    """
    model = prepare_model(model)
    scans = scans.sort_values("row").reset_index(drop=True)
    all_rows = scans["row"].astype(int).tolist()
    subset = perturbation_subset(scans, lesion_masks, settings.n_perturbation_scans, settings.seed)
    seeds = list(range(settings.randomisation_seeds))
    network_seeds = list(range(max(settings.n_random_networks, settings.randomisation_seeds)))
    per_scan, randomisation, random_share, timing, case_maps = [], [], [], [], {}
    for name, method in settings.method_table().items():
        started, cpu_started = time.perf_counter(), time.process_time()
        rows = subset if method.expensive else all_rows
        maps = attribution_maps(model, method, volumes, brain_masks, rows)
        scores = pd.DataFrame(_localisation_rows(maps, rows, brain_masks, lesion_masks))
        scores.insert(0, "row", rows)
        mapped, cpu_mapped = time.perf_counter(), time.process_time()
        in_subset = [rows.index(row) for row in subset]
        deletion = deletion_test(
            model,
            volumes,
            brain_masks,
            subset,
            maps[in_subset],
            fraction=settings.deletion_fraction,
            n_random=settings.n_random_regions,
            seed=settings.seed,
        )
        scores = scores.merge(deletion, on="row", how="left")
        scores.insert(0, "method", name)
        per_scan.append(scores)
        deleted, cpu_deleted = time.perf_counter(), time.process_time()

        n_sanity = settings.n_sanity_scans_expensive if method.expensive else settings.n_sanity_scans
        sanity_rows = subset[:n_sanity]
        original = maps[[rows.index(row) for row in sanity_rows]]
        table, random_maps = cascading_randomisation(
            model,
            method,
            volumes,
            brain_masks,
            sanity_rows,
            seeds=seeds,
            steps="ends" if method.expensive else "cascade",
            original=original,
        )
        table.insert(0, "method", name)
        randomisation.append(table)
        if not method.expensive:  # occlusion and IG are zero outside the brain: brain share is 1 by design
            blocks = cascade_blocks(model)
            for seed in network_seeds:
                random = random_maps.get(seed)
                if random is None:
                    random = attribution_maps(
                        randomised(model, blocks, seed), method, volumes, brain_masks, sanity_rows
                    )
                shares = np.array(
                    [s["brain_share"] for s in _localisation_rows(random, sanity_rows, brain_masks, None)]
                )
                # NaN when no map of this network has positive evidence (e.g. Grad-CAM, all ReLU'd away).
                mean_share = float(shares[~np.isnan(shares)].mean()) if (~np.isnan(shares)).any() else np.nan
                random_share.append((name, seed, len(sanity_rows), mean_share))
        sane, cpu_sane = time.perf_counter(), time.process_time()
        case_maps[name] = attribution_maps(model, method, volumes, brain_masks, case_rows)
        timing += [
            (name, "maps", len(rows), mapped - started, cpu_mapped - cpu_started),
            (name, "deletion", len(subset), deleted - mapped, cpu_deleted - cpu_mapped),
            (name, "randomisation", len(sanity_rows), sane - deleted, cpu_sane - cpu_deleted),
            (
                name,
                "figure cases",
                len(case_rows),
                time.perf_counter() - sane,
                time.process_time() - cpu_sane,
            ),
        ]
        log.info("%s: %s", name, ", ".join(f"{t[1]} {t[3]:.1f} s" for t in timing if t[0] == name))
    identity = [
        column for column in ("row", "scan_id", "patient_id", "part", "visible") if column in scans.columns
    ]
    scan_table = pd.concat(per_scan, ignore_index=True).merge(scans[identity], on="row", how="left")
    scan_table["perturbation_subset"] = scan_table["row"].isin(subset)
    return VariantResult(
        scans=scan_table,
        randomisation=pd.concat(randomisation, ignore_index=True),
        random_brain_share=pd.DataFrame(random_share, columns=["method", "seed", "n_scans", "brain_share"]),
        case_maps=case_maps,
        timing=pd.DataFrame(timing, columns=["method", "part", "n_scans", "seconds", "cpu_seconds"]),
    )


def summarise_variants(
    variants: Mapping[str, Mapping[str, pd.DataFrame]],
    counterfactuals: pd.DataFrame | None,
    model_name: str = "ctnet",
    n_bootstrap: int = 2000,
    seed: int = 2026,
) -> dict[str, pd.DataFrame]:
    """The stage's tidy tables from the variants' measurements and the counterfactual test.

    Args:
        variants: input kind (``full_head``/``skull_stripped``) -> ``{"scans": ..., "randomisation":
            ..., "random_brain_share": ...}`` as written by the variant rule.
        counterfactuals: :func:`htct.attribution.faithfulness.read_counterfactuals` table or None.
        model_name: registry name of the model.
        n_bootstrap: patient-bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        ``localisation`` (the interface table), ``uses_infarct``, ``sanity`` (randomisation summary
        per step), ``faithfulness`` (deletion and enrichment-vs-Delta) and ``verdicts`` (one row per
        variant and method: every test's figure and verdict).
    """
    localisation, use, sanity, faithfulness = [], [], [], []
    for input_kind, tables in variants.items():
        key = {"model": model_name, "input": input_kind}
        use.append(uses_infarct(counterfactuals, model_name, input_kind))
        scans, randomisation = tables["scans"], tables["randomisation"]
        shares = tables["random_brain_share"]
        for method in scans["method"].unique():
            per_scan = scans[scans["method"] == method]
            random = shares.loc[shares["method"] == method, "brain_share"].to_numpy()
            metrics = summarise_localisation(
                per_scan,
                random_brain_shares=random,
                brain_share_applicable=len(random) > 0,
                n_bootstrap=n_bootstrap,
                seed=seed,
            )
            localisation.append(metrics.assign(**key, method=method))
            steps = summarise_randomisation(randomisation[randomisation["method"] == method])
            sanity.append(steps.assign(**key, method=method))
            deletion = summarise_deletion(per_scan.dropna(subset=["drop_top"]))
            correlation = enrichment_vs_counterfactual(per_scan, counterfactuals, model_name, input_kind)
            faithfulness += [
                {**key, "method": method, "test": "deletion", "n_scans": deletion["n_scans"],
                 "estimate": deletion["drop_top"], "reference": deletion["drop_random"],
                 "p_value": deletion["p_value"], "verdict": deletion["verdict"]},
                {**key, "method": method, "test": "enrichment_vs_counterfactual", "n_scans": correlation["n_scans"],
                 "estimate": correlation["spearman"], "reference": 0.6,
                 "p_value": correlation["p_value"], "verdict": correlation["verdict"]},
            ]  # fmt: skip
    tables = {
        "localisation": _columns(pd.concat(localisation), LOCALISATION_COLUMNS),
        "uses_infarct": pd.DataFrame(use)[USES_INFARCT_COLUMNS],
        "sanity": _columns(pd.concat(sanity), ["model", "input", "method", *SANITY_COLUMNS]),
        "faithfulness": pd.DataFrame(faithfulness),
    }
    tables["verdicts"] = verdict_table(tables)
    return tables


LOCALISATION_COLUMNS = [
    "model", "input", "method", "metric", "n_scans", "estimate", "lower", "upper", "chance", "p_value", "verdict",
]  # fmt: skip
USES_INFARCT_COLUMNS = ["model", "input", "uses_infarct", "reason"]
"""The interface (docs/attribution.md); the figures behind the verdict are in ``reason``."""
SANITY_COLUMNS = [
    "step", "block", "n_randomised", "n_seeds", "n_scans", "spearman", "spearman_min", "spearman_max",
    "endpoint", "verdict",
]  # fmt: skip
TESTS = (
    "randomisation_top",
    "randomisation_all",
    "lesion_enrichment",
    "pointing_hit",
    "brain_share",
    "deletion",
    "enrichment_vs_counterfactual",
)
"""The tests of a (variant, method), in table order."""
CORE_TESTS = ("randomisation_top", "randomisation_all", "lesion_enrichment", "pointing_hit", "deletion")
"""The tests that decide whether a map shows where the model's evidence is (sanity, localisation,
deletion); figure 3's method is chosen on these first. Brain share (not applicable to the
healthy-tissue methods) and enrichment vs counterfactual (test scans only: 12 scans for the costly
methods) come second."""


def _columns(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return table[list(columns)].reset_index(drop=True)


def verdict_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per variant and method: ``uses_infarct``, each test's verdict and ``n_pass``/``n_tests``
    (over the applicable tests) and ``passes_all``."""
    use = tables["uses_infarct"].set_index(["model", "input"])["uses_infarct"]
    rows = []
    for (model, input_kind, method), group in tables["localisation"].groupby(
        ["model", "input", "method"], sort=False
    ):
        verdict = {f"{m}": v for m, v in zip(group["metric"], group["verdict"], strict=True)}
        sanity = tables["sanity"]
        mine = sanity[
            (sanity["model"] == model) & (sanity["input"] == input_kind) & (sanity["method"] == method)
        ]
        for endpoint in ("top", "all"):
            at = mine.loc[mine["endpoint"] == endpoint, "verdict"]
            verdict[f"randomisation_{endpoint}"] = at.iloc[0] if len(at) else "not_applicable"
        faith = tables["faithfulness"]
        faith = faith[
            (faith["model"] == model) & (faith["input"] == input_kind) & (faith["method"] == method)
        ]
        verdict.update(dict(zip(faith["test"], faith["verdict"], strict=True)))
        applicable = [
            verdict[test] for test in TESTS if verdict.get(test, "not_applicable") != "not_applicable"
        ]
        rows.append(
            {
                "model": model,
                "input": input_kind,
                "method": method,
                "uses_infarct": use.get((model, input_kind), "undecided"),
                **{test: verdict.get(test, "not_applicable") for test in TESTS},
                "n_pass": sum(v == "pass" for v in applicable),
                "n_tests": len(applicable),
                "passes_all": bool(applicable) and all(v == "pass" for v in applicable),
            }
        )
    return pd.DataFrame(rows)


def figure_choice(verdicts: pd.DataFrame, configured_input: str) -> dict[str, object]:
    """The variant and method figure 3 is drawn from, and why.

    A variant that uses the infarct (counterfactual test) comes first, the configured variant next;
    within it the method with the fewest failures among :data:`CORE_TESTS`, then the fewest
    failures overall, then the most passes; ties go to table order (the paper's Grad-CAM first).
    When no variant is known to use the infarct, the configured variant is drawn with a note that
    its heatmap is not evidence of use.

    Returns:
        ``input, method, uses_infarct, n_pass, n_tests, passes_all, failed`` (the failed tests'
        names, comma-separated).
    """
    failed = verdicts[list(TESTS)].eq("fail")
    ranked = verdicts.assign(
        _uses=(verdicts["uses_infarct"] == "true").astype(int),
        _configured=(verdicts["input"] == configured_input).astype(int),
        _core_failed=failed[list(CORE_TESTS)].sum(axis=1),
        _failed=failed.sum(axis=1),
        _order=np.arange(len(verdicts)),
        failed=[", ".join(test for test in TESTS if row[test]) for _, row in failed.iterrows()],
    )
    order = ["_uses", "_configured", "_core_failed", "_failed", "n_pass", "_order"]
    best = ranked.sort_values(order, ascending=[False, False, True, True, False, True]).iloc[0]
    keys = ("input", "method", "uses_infarct", "n_pass", "n_tests", "passes_all", "failed")
    return {key: best[key].item() if hasattr(best[key], "item") else best[key] for key in keys}
