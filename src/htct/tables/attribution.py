"""The attribution table: per CTNet variant and method, every test's figure and verdict."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from htct.attribution.methods import methods
from htct.names import variant_label

USES = {"true": "yes", "false": "no: maps are not evidence", "undecided": "undecided"}


def _number(value: float, digits: int = 2) -> str:
    return "NA" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "NA"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _mark(verdict: str) -> str:
    return {"pass": " (pass)", "fail": " (fail)"}.get(verdict, "")


def attribution_table(
    tables: Mapping[str, pd.DataFrame], choice: Mapping[str, object]
) -> tuple[pd.DataFrame, str]:
    """The report's attribution table and its title.

    Args:
        tables: :func:`htct.attribution.stage.summarise_variants` output.
        choice: :func:`htct.attribution.stage.figure_choice` (named in the title).

    Returns:
        ``(table, title)``: one row per (variant, method), indexed by Model and Method; columns
        "Uses infarct", "Randomisation rho, top / all", "Lesion enrichment (95% CI)", "Pointing hit, %
        (chance)", "Brain share, % (random nets)", "Deletion drop, top vs random", "Enrichment vs
        counterfactual rho", "Tests passed". Each figure carries its verdict.
    """
    display = {name: method.display for name, method in methods().items()}
    localisation = tables["localisation"].set_index(["input", "method", "metric"])
    sanity = tables["sanity"]
    faithfulness = tables["faithfulness"].set_index(["input", "method", "test"])
    rows = {}
    for verdict in tables["verdicts"].itertuples(index=False):
        key = (verdict.input, verdict.method)
        model = variant_label("ctnet", verdict.input)
        mine = sanity[(sanity["input"] == verdict.input) & (sanity["method"] == verdict.method)]
        ends = {row.endpoint: row for row in mine.itertuples() if row.endpoint}
        top, every = ends.get("top"), ends.get("all")
        randomisation = (
            f"{_number(top.spearman)} / {_number(every.spearman)}"
            + _mark("pass" if top.verdict == every.verdict == "pass" else "fail")
            if top is not None and every is not None
            else "NA"
        )
        enrichment = localisation.loc[(*key, "lesion_enrichment")]
        pointing = localisation.loc[(*key, "pointing_hit")]
        brain = localisation.loc[(*key, "brain_share")]
        deletion = faithfulness.loc[(*key, "deletion")]
        versus = faithfulness.loc[(*key, "enrichment_vs_counterfactual")]
        rows[(model, display.get(verdict.method, verdict.method))] = {
            "Uses infarct": USES.get(verdict.uses_infarct, verdict.uses_infarct),
            "Randomisation rho, top / all": randomisation,
            "Lesion enrichment (95% CI)": (
                f"{_number(enrichment.estimate, 1)} ({_number(enrichment.lower, 1)}–{_number(enrichment.upper, 1)})"
                f"{_mark(enrichment.verdict)}"
                if enrichment.verdict != "not_applicable"
                else "NA"
            ),
            "Pointing hit, % (chance)": (
                f"{100 * pointing.estimate:.0f} ({100 * pointing.chance:.1f}){_mark(pointing.verdict)}"
                if pointing.verdict != "not_applicable"
                else "NA"
            ),
            "Brain share, % (random nets)": (
                f"{100 * brain.estimate:.0f} ({100 * brain.chance:.0f}){_mark(brain.verdict)}"
                if brain.verdict != "not_applicable"
                else "100 by design"
            ),
            "Deletion drop, top vs random": (
                f"{_number(deletion.estimate, 3)} vs {_number(deletion.reference, 3)}, {_p(deletion.p_value)}"
                f"{_mark(deletion.verdict)}"
                if deletion.verdict != "not_applicable"
                else "NA"
            ),
            "Enrichment vs counterfactual rho": (
                f"{_number(versus.estimate)} (n = {versus.n_scans}){_mark(versus.verdict)}"
                if versus.verdict != "not_applicable"
                else "NA"
            ),
            "Tests passed": f"{verdict.n_pass} / {verdict.n_tests}",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["Model", "Method"])
    drawn = f"{display.get(str(choice['method']), choice['method'])}, {variant_label('ctnet', str(choice['input']))}"
    title = (
        "Attribution of CTNet's HT logit: randomisation check (Spearman rho), lesion enrichment over the "
        "in-brain chance, pointing game (+-1 slice, +-2 px), brain share against random-weight networks, "
        f"deletion and counterfactual faithfulness (validation and test scans). Figure 3 shows {drawn}."
    )
    return table, title
