"""One run beside the paper: the comparison, the claims and the MRMC table from a run's tidy files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from htct.paper.claims import claims_table, paper_claims
from htct.paper.comparison import (
    comparison_table,
    comparison_title,
    oracle_metrics,
    read_truth_scans,
    reference_rows,
    reproduced_values,
)
from htct.paper.values import load_paper_values
from htct.sheets import load_clinical
from htct.tables.table1 import table1_values

IDS = {"patient_id": str, "scan_id": str}
NONINFERIORITY_MARGIN = 0.05
"""The schema's default of ``paper.noninferiority_margin`` (for callers without a validated config)."""


def compare_with_run(
    values_path: str | Path,
    metrics_path: str | Path,
    test_scans_path: str | Path,
    numbers_path: str | Path,
    clinical_path: str | Path,
    split_path: str | Path,
    truth_dir: str | Path | None,
    localisation_path: str | Path | None,
    models: Sequence[str],
    evaluate: Mapping,
    paper: Mapping,
    attribution_scans_path: str | Path | None = None,
) -> dict[str, pd.DataFrame | None]:
    """Read a run's tidy outputs and set them beside the paper.

    Args:
        values_path: the paper's values file.
        metrics_path: ``results/evaluation/metrics.tsv``.
        test_scans_path: ``results/evaluation/test_scans.tsv``.
        numbers_path: ``results/numbers.json``.
        clinical_path: the clinical sheet.
        split_path: ``results/split/split.tsv``.
        truth_dir: the synthetic cohort's truth folder (its ``scans.tsv`` gives the oracle), or None.
        localisation_path: ``results/attribution/localisation.tsv``, or None.
        models: the models, CTNet first.
        evaluate: the ``evaluate`` config (bootstrap resamples and seed, as the evaluation used).
        paper: the ``paper`` config (alpha, attribution method, oracle threshold, non-inferiority
            margin).
        attribution_scans_path: ``results/attribution/full_head/scans.tsv`` (per-scan attribution
            values that decide the attention claim), or None.

    Returns:
        ``reproduced`` (tidy numbers), ``comparison`` (formatted), ``comparison_title`` (its caption, with
        the count of printed cells it shows), ``claims`` (tidy),
        ``claims_table`` (formatted), ``mrmc`` (tidy, None without readers), ``oracle`` (or None).
    """
    values = load_paper_values(values_path)
    test_scans = pd.read_csv(test_scans_path, sep="\t", dtype=IDS)
    truth = read_truth_scans(truth_dir)
    oracle = None
    if truth is not None:
        oracle = oracle_metrics(
            test_scans,
            truth,
            evaluate["n_bootstrap"],
            evaluate["seed"],
            paper["oracle_threshold"],
        )
    table1 = table1_values(load_clinical(clinical_path), pd.read_csv(split_path, sep="\t", dtype=IDS))
    numbers = json.loads(Path(numbers_path).read_text(encoding="utf-8"))
    metrics = pd.read_csv(metrics_path, sep="\t")
    reproduced = reproduced_values(values, metrics, numbers, table1, oracle)
    localisation = pd.read_csv(localisation_path, sep="\t") if localisation_path else None
    claims, mrmc = paper_claims(
        test_scans,
        models,
        evaluate["n_bootstrap"],
        evaluate["seed"],
        paper["alpha"],
        localisation,
        paper["attribution_method"],
        paper.get("noninferiority_margin", NONINFERIORITY_MARGIN),
        pd.read_csv(attribution_scans_path, sep="\t", dtype=IDS) if attribution_scans_path else None,
        truth[["scan_id", "visible"]] if truth is not None and "visible" in truth.columns else None,
    )
    comparison = pd.concat(
        [
            comparison_table(values, reproduced, oracle is not None),
            reference_rows(values, metrics, oracle is not None),
        ]
    )
    return {
        "reproduced": reproduced,
        "comparison": comparison,
        "comparison_title": comparison_title(values, comparison),
        "claims": claims,
        "claims_table": claims_table(claims),
        "mrmc": mrmc,
        "oracle": oracle,
    }
