"""Every published number next to the reproduced one (with its CI) and, for a synthetic run, the
oracle's: the image-only probability the generator knows (``p_image_scan``), the ceiling of any
model or reader that sees only the scan.

The reproduced numbers come from the workflow's tidy outputs, never from formatted tables:
``results/evaluation/metrics.tsv`` (metric kind), ``results/numbers.json`` (readers, agreement,
count kinds) and the clinical sheet with the split (Table 1, via
:func:`htct.tables.table1.table1_values`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from htct.evaluate import bootstrap_metrics
from htct.paper.audit import implied_prevalence, printed_share
from htct.paper.layout import LOST, paper_cell, two_lines
from htct.paper.values import PaperValues
from htct.report.html import html_document, notice_html

ORACLE = "oracle"
REPRODUCED_COLUMNS = [
    "id",
    "reproduced",
    "reproduced_low",
    "reproduced_high",
    "reproduced_sd",
    "oracle",
    "oracle_low",
    "oracle_high",
    "reproduced_from",
]


def read_truth_scans(truth_dir: str | Path | None) -> pd.DataFrame | None:
    """The synthetic cohort's per-scan truth (``truth/scans.tsv``: scan_id, p_image_scan, ...), or
    None for a cohort without it (no truth folder, or one without that table)."""
    path = Path(truth_dir) / "scans.tsv" if truth_dir else None
    if path is None or not path.is_file():
        return None
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str, "scan_id": str})


def oracle_metrics(
    test_scans: pd.DataFrame,
    truth_scans: pd.DataFrame,
    n_bootstrap: int = 2000,
    seed: int = 2026,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Metrics of the synthetic cohort's image-only probability on the test scans.

    Called at ``threshold`` (0.5, the call that maximises the expected accuracy of a calibrated
    probability), with the same patient-level bootstrap (seed and resamples) as the evaluation.

    Args:
        test_scans: ``results/evaluation/test_scans.tsv`` (scan_id, patient_id, y_true).
        truth_scans: the generator's ``truth/scans.tsv`` (scan_id, p_image_scan).
        n_bootstrap: resamples.
        seed: bootstrap seed.
        threshold: HT call when ``p_image_scan >= threshold``.

    Returns:
        Long table ``rater (= "oracle"), metric, value, low, high, n_undefined``.
    """
    scans = test_scans[["scan_id", "patient_id", "y_true"]].merge(
        truth_scans[["scan_id", "p_image_scan"]], on="scan_id", how="left", validate="1:1"
    )
    if scans["p_image_scan"].isna().any():
        missing = scans.loc[scans["p_image_scan"].isna(), "scan_id"].iloc[0]
        raise ValueError(f"truth scans.tsv has no p_image_scan for test scan {missing}")
    result = bootstrap_metrics(
        scans["y_true"].to_numpy(),
        scans["patient_id"].to_numpy(),
        {ORACLE: scans["p_image_scan"].to_numpy()},
        {ORACLE: threshold},
        n_bootstrap,
        seed,
    )
    return result.ci()


def _dotted(numbers: Mapping[str, Any], key: str) -> float | None:
    value: Any = numbers
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return None if value is None else float(value)


def _scale(unit: str) -> float:
    return 100.0 if unit == "percent" else 1.0


def reproduced_values(
    values: PaperValues,
    metrics: pd.DataFrame,
    numbers: Mapping[str, Any],
    table1: pd.DataFrame,
    oracle: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The reproduced number (and oracle) for every entry of the values file, in the entry's unit.

    Args:
        values: the paper's values.
        metrics: long interval table (rater, metric, value, low, high) of the evaluation.
        numbers: ``results/numbers.json``.
        table1: :func:`htct.tables.table1.table1_values`.
        oracle: :func:`oracle_metrics` (synthetic runs), or None.

    Returns:
        One row per entry: :data:`REPRODUCED_COLUMNS` (NaN where the run has no such number).
    """
    cells = metrics.set_index(["rater", "metric"])
    oracle_cells = oracle.set_index("metric") if oracle is not None else None
    t1 = table1.set_index(["group", "variable", "level"])
    rows = []
    for _, entry in values.entries.iterrows():
        spec = entry["compare"] if isinstance(entry["compare"], dict) else {}
        scale = _scale(entry["unit"])
        row = dict.fromkeys(REPRODUCED_COLUMNS, np.nan)
        row["id"], row["reproduced_from"] = entry["id"], ""
        kind = spec.get("kind")
        if kind == "metric":
            key = (spec["rater"], spec["metric"])
            row["reproduced_from"] = f"metrics.tsv {spec['rater']} {spec['metric']}"
            if key in cells.index:
                row["reproduced"], row["reproduced_low"], row["reproduced_high"] = (
                    scale * cells.loc[key, c] for c in ("value", "low", "high")
                )
            if oracle_cells is not None and spec["metric"] in oracle_cells.index:
                row["oracle"], row["oracle_low"], row["oracle_high"] = (
                    scale * oracle_cells.loc[spec["metric"], c] for c in ("value", "low", "high")
                )
        elif kind == "readers":
            row["reproduced_from"] = f"numbers.json readers {spec['metric']} {spec['stat']}"
            value = _dotted(numbers, f"readers.{spec['metric']}.{spec['stat']}")
            row["reproduced"] = np.nan if value is None else scale * value
        elif kind == "agreement":
            row["reproduced_from"] = f"numbers.json agreement {spec['key']} {spec['stat']}"
            value = _dotted(numbers, f"agreement.{spec['key']}.{spec['stat']}")
            row["reproduced"] = np.nan if value is None else scale * value
        elif kind == "count":
            row["reproduced_from"] = "numbers.json " + " + ".join(spec["keys"])
            parts = [_dotted(numbers, key) for key in spec["keys"]]
            row["reproduced"] = np.nan if any(p is None for p in parts) else float(sum(parts))
        elif kind == "table1":
            key = (spec["group"], spec["variable"], spec.get("level", ""))
            row["reproduced_from"] = (
                f"clinical sheet + split, {spec['group']} {spec['variable']} {spec.get('level', '')}".strip()
            )
            if key in t1.index:
                row["reproduced"], row["reproduced_sd"] = t1.loc[key, "value"], t1.loc[key, "sd"]
        rows.append(row)
    return pd.DataFrame(rows, columns=REPRODUCED_COLUMNS)


def _number(value: float, decimals: int) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{decimals}f}"


def _with_interval(
    value: float, low: float, high: float, decimals: int, sd: float = np.nan, ci_decimals: int | None = None
) -> str:
    text = _number(value, decimals)
    ci_decimals = decimals if ci_decimals is None else ci_decimals
    if text == "—":
        return text
    if np.isfinite(sd):
        return f"{text} ± {sd:.{decimals}f}"
    if np.isfinite(low) and np.isfinite(high):
        return f"{text} ({low:.{ci_decimals}f}–{high:.{ci_decimals}f})"
    return text


def _difference(run: float, paper: float, unit: str, metric: str | None) -> str:
    """This run minus the paper, with its unit: percentage points, AUC or agreement units, years."""
    if not (np.isfinite(run) and np.isfinite(paper)) or unit in ("count", "mm"):
        return ""
    difference = run - paper
    if unit == "percent":
        return f"{difference:+.2f} pp"
    if unit == "years":
        return f"{difference:+.2f} years"
    return f"{difference:+.3f} " + ("AUC" if metric == "auc" else "(fraction)")


def comparison_counts(values: PaperValues, table: pd.DataFrame | None = None) -> dict[str, int]:
    """How many of the cells tables 1-3 print the comparison shows as the paper's value.

    A printed cell is one read from a table, or inferred from a surviving cell of a table whose column
    the extraction lost (it has a ``quote``); inferred cells filled from the text and lost cells are
    counted apart.

    Args:
        values: the paper's values.
        table: :func:`comparison_table` (to count what it shows), or None to count the values file alone.

    Returns:
        ``printed``, ``shown``, ``inferred``, ``inferred_from_text``, ``lost`` (table cells) and ``text``
        (numbers read from the text).
    """
    e = values.entries
    tables = e[e["section"] != "Text"]
    printed_mask = (tables["status"] == "read") | ((tables["status"] == "inferred") & tables["quote"].notna())
    printed_ids = set(tables.loc[printed_mask, "id"])
    if table is None:
        shown = int(tables.loc[printed_mask, "value"].notna().sum())
    else:
        # the table has one row per entry, in the values file's order
        table = table[table["Status"] != DERIVED]  # the reference rows are not the paper's cells
        paper = pd.Series(table["Paper"].to_numpy(), index=e["id"].to_numpy())
        shown = int((~paper[list(printed_ids)].isin([LOST, "—", ""])).sum())
    return {
        "printed": len(printed_ids),
        "shown": shown,
        "inferred": int((tables["status"] == "inferred").sum()),
        "inferred_from_text": int(((tables["status"] == "inferred") & tables["quote"].isna()).sum()),
        "lost": int((tables["status"] == "missing").sum()),
        "text": int((e["section"] == "Text").sum()),
    }


def comparison_title(values: PaperValues, table: pd.DataFrame | None = None) -> str:
    """The comparison's caption, with how many printed cells it shows as the paper's value."""
    c = comparison_counts(values, table)
    return (
        "The paper's published numbers beside this run's (95% CI, patient-level bootstrap). "
        f"Tables 1–3: {c['shown']} of the {c['printed']} cells the stored page prints are shown as the paper's "
        f"value; {c['inferred']} cells are inferred (†: their column was lost; {c['inferred_from_text']} of them "
        f"filled from the text), {c['lost']} lost. The text: {c['text']} numbers. "
        "Difference: this run minus the paper, in percentage points (pp) for percentages and in AUC units for "
        "AUCs. The oracle (synthetic runs) is one image-only ceiling per metric, shown on the first row of each "
        "metric in a section."
    )


def comparison_table(values: PaperValues, reproduced: pd.DataFrame, synthetic: bool) -> pd.DataFrame:
    """The comparison as printed: one row per published number.

    Args:
        values: the paper's values.
        reproduced: :func:`reproduced_values`.
        synthetic: whether the run is the synthetic cohort (adds the oracle column).

    Returns:
        Indexed by (Section, Quantity), one row per entry in the file's order; columns Paper (a dagger when inferred, "lost" when
        missing), Status, Reproduced (95% CI), Difference (this run minus the paper, with its unit),
        [Oracle (95% CI), once per metric and section], Source and note. Percentages in percent, AUC and
        agreement as the paper prints them.
    """
    merged = values.entries.merge(reproduced, on="id", how="left", validate="1:1")
    rows = []
    oracle_shown: set[tuple[str, str]] = set()
    for _, e in merged.iterrows():
        paper = paper_cell(e)
        if e["approximate"] and paper != LOST:
            paper = f"about {paper}"
        if e["status"] == "inferred":
            paper += " †"
        shown = {"count": 0, "years": max(int(e["decimals"]), 1), "percent": max(int(e["decimals"]), 2)}.get(
            e["unit"], max(int(e["decimals"]), 3)
        )
        spec = e["compare"] if isinstance(e["compare"], dict) else {}
        row = {
            "Section": e["section"],
            "Quantity": e["quantity"],
            "Paper": paper,
            "Status": e["status"],
            "Reproduced (95% CI)": _with_interval(
                e["reproduced"], e["reproduced_low"], e["reproduced_high"], shown, e["reproduced_sd"]
            ),
            "Difference": _difference(
                float(e["reproduced"]), float(e["value"]), e["unit"], spec.get("metric")
            ),
        }
        if synthetic:
            key = (e["section"], spec.get("metric", ""))
            first = np.isfinite(e["oracle"]) and key not in oracle_shown
            oracle_shown |= {key} if first else set()
            row["Oracle (95% CI)"] = (
                _with_interval(e["oracle"], e["oracle_low"], e["oracle_high"], shown) if first else ""
            )
        notes = [str(e[c]) for c in ("source", "note") if isinstance(e[c], str) and e[c]]
        if e["status"] == "inferred":
            notes.append(f"† inferred: {e['inference']}")
        row["Source and note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows).set_index(["Section", "Quantity"])


# The trivial reference: every test scan called HT. Not printed by the paper: its column holds what that
# rater scores at the HT share the paper's own CTNet row of Table 2 implies, so the headline numbers can be
# read against it (an F1 of 2p/(1+p) needs no image at all).
REFERENCE_SECTION = "Reference: every scan HT"
DERIVED = "derived"
REFERENCE_RATER = "every_scan_ht"
REFERENCE_METRICS = {
    "accuracy": ("Accuracy (= HT share)", lambda p: p),
    "sensitivity": ("Sensitivity", lambda p: 1.0),
    "specificity": ("Specificity", lambda p: 0.0),
    "ppv": ("PPV (= HT share)", lambda p: p),
    "f1": ("F1, HT class: 2p/(1+p)", lambda p: 2 * p / (1 + p)),
    "macro_f1": ("F1, macro-averaged (Table 3's): p/(1+p)", lambda p: p / (1 + p)),
    "auc": ("AUC", lambda p: 0.5),
}


def paper_implied_prevalence(
    values: PaperValues, row: str = "CTNet", section: str = "Table 2"
) -> tuple[float, float]:
    """The HT share (0-1) of the test set that a printed row of the paper implies, from its accuracy,
    sensitivity and specificity (or PPV) at their printed rounding; NaN when the row lacks them."""
    e = values.entries
    cells = e[(e["section"] == section) & (e["row"] == row) & e["value"].notna()]
    share = {
        str(c["column"]).lower(): printed_share(float(c["value"]), int(c["decimals"]), c["unit"])
        for _, c in cells.iterrows()
    }
    if "accuracy" not in share or "sensitivity" not in share:
        return np.nan, np.nan
    return implied_prevalence(
        share["accuracy"], share["sensitivity"], share.get("specificity"), share.get("ppv")
    )


def reference_rows(values: PaperValues, metrics: pd.DataFrame, synthetic: bool) -> pd.DataFrame:
    """The "every scan HT" reference beside the comparison: at the paper's implied HT share and on this run.

    Args:
        values: the paper's values.
        metrics: long interval table of the evaluation (its ``every_scan_ht`` rater, when scored).
        synthetic: whether the run is the synthetic cohort (the oracle column, empty here).

    Returns:
        Rows in :func:`comparison_table`'s columns, Status ``derived``; indexed by (Section, Quantity).
    """
    low, high = paper_implied_prevalence(values)
    cells = metrics.set_index(["rater", "metric"])
    rows = []
    for metric, (quantity, of_share) in REFERENCE_METRICS.items():
        paper_low, paper_high = sorted((100 * of_share(low), 100 * of_share(high)))
        paper = (
            "—"
            if not np.isfinite(paper_low)
            else f"{paper_low:.1f}"
            if abs(paper_high - paper_low) < 0.05
            else f"{paper_low:.1f}–{paper_high:.1f}"
        )
        key = (REFERENCE_RATER, metric)
        run = (
            [100 * cells.loc[key, c] for c in ("value", "low", "high")]
            if key in cells.index
            else [np.nan] * 3
        )
        row = {
            "Section": REFERENCE_SECTION,
            "Quantity": quantity,
            "Paper": paper,
            "Status": DERIVED,
            "Reproduced (95% CI)": _with_interval(*run, 2),
            "Difference": "",
        }
        if synthetic:
            row["Oracle (95% CI)"] = ""
        # the note once, on the section's first row (the rest share it)
        row["Source and note"] = (
            ""
            if rows
            else (
                "not printed by the paper: calling every test scan HT, at the HT share "
                f"{100 * low:.1f}–{100 * high:.1f}% that the paper's CTNet row of Table 2 implies (accuracy, "
                "sensitivity and the inferred specificity at their printed rounding); this run: the evaluation's "
                "every_scan_ht rater (results/evaluation/metrics.tsv), in percent (AUC in percent too). "
                "The paper's Table 3 prints such a row for a comparison model (64.52 / 100 / 0 / 39.22)."
            )
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index(["Section", "Quantity"])


COMPARISON_STYLE = """
body { margin: 1rem; }
table.comparison { width: 100%; max-width: 72rem; }
table.comparison td, table.comparison th { white-space: normal; vertical-align: top; padding: 0.25rem 0.3rem; }
table.comparison td.number, table.comparison th.number { text-align: right; }
table.comparison td.quantity { min-width: 8rem; }
table.comparison tr.section th { background: #f1f5f9; text-align: left; padding-top: 0.5rem; }
table.comparison .ci { display: block; white-space: nowrap; }
table.comparison .source { display: block; font-size: 0.74rem; color: #64748b; max-width: 34rem; }
.notes { font-size: 0.85rem; max-width: 60rem; padding-left: 1.2rem; }
.notes li { margin: 0.15rem 0; }
"""


def comparison_html(table: pd.DataFrame, title: str, synthetic: bool) -> str:
    """The comparison as a report page that fits a narrow panel: no column of sentences beside the numbers.

    Each entry's source and note sit in small type under its quantity, the status as a mark on the paper's
    value, the sections as header rows; the notes above the table say what the columns and marks mean. At
    the report's item width (about 620 px at a 1400 px window with the menu open) every column shows.

    Args:
        table: :func:`comparison_table`.
        title: :func:`comparison_title`.
        synthetic: whether the run is the synthetic cohort (the notice, the oracle column).

    Returns:
        A complete HTML document.
    """
    headline, _, notes = title.partition(". ")
    columns = ["Paper", "Reproduced (95% CI)", "Difference"] + (
        ["Oracle (95% CI)"] if "Oracle (95% CI)" in table.columns else []
    )
    names = {"Reproduced (95% CI)": "This run (95% CI)", "Difference": "This run − paper"}
    head = "<th>Quantity</th>" + "".join(
        f'<th class="number">{html.escape(names.get(c, c))}</th>' for c in columns
    )
    body, section = [], None
    for (this_section, quantity), row in table.iterrows():
        if this_section != section:
            section = this_section
            body.append(
                f'<tr class="section"><th colspan="{len(columns) + 1}">{html.escape(section)}</th></tr>'
            )
        source = row["Source and note"]
        cells = "".join(f'<td class="number">{two_lines(str(row[c]))}</td>' for c in columns)
        body.append(
            f'<tr><td class="quantity">{html.escape(str(quantity))}'
            + (f'<span class="source">{html.escape(source)}</span>' if source else "")
            + f"</td>{cells}</tr>"
        )
    items = [s.strip() for s in notes.split(". ") if s.strip()]
    items.append(
        "† inferred: a cell whose column the page's text extraction lost, placed by the argument under its "
        "quantity; lost: a cell the extraction lost, with no value in the text."
    )
    page = (
        notice_html(synthetic)
        + f"<h1>{html.escape(headline)}</h1>\n"
        + '<ul class="notes">'
        + "".join(f"<li>{html.escape(item.rstrip('.'))}.</li>" for item in items)
        + "</ul>\n"
        + f'<table class="comparison"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>\n'
    )
    document = html_document(headline, page)
    return document.replace("</style>", COMPARISON_STYLE + "</style>", 1)
