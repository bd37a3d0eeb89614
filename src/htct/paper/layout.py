"""Tables 1-3 in the paper's own layout: the paper's rows and columns, each cell the paper's value above
this run's (95% CI), inferred cells marked with a dagger and their argument as a footnote, lost cells
marked, and for a synthetic run the oracle (the cohort's image-only ceiling) as one row of its own.

Read from the values file (:mod:`htct.paper.values`) and the run's tidy comparison
(``results/paper/comparison.tsv``, :func:`htct.paper.comparison.reproduced_values`); the long comparison
stays the table for programs, these pages are for reading beside the paper.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from htct.paper.values import PaperValues
from htct.report.html import html_document, notice_html

SECTIONS = ("Table 1", "Table 2", "Table 3")
TITLES = {
    "Table 1": "Table 1. Characteristics of the patients: the paper beside this run",
    "Table 2": "Table 2. CTNet and the eight clinicians on the test set: the paper beside this run",
    "Table 3": "Table 3. CTNet and the two re-implemented models: the paper beside this run",
}
LOST = "lost"
"""What a cell shows where the stored page lost the paper's value."""
ORACLE_ROW = "Oracle (image-only ceiling)"
LAYOUT_STYLE = """
body { margin: 0.75rem; }
table.layout { font-size: 0.76rem; }
table.layout td, table.layout th { white-space: normal; vertical-align: top; padding: 0.2rem 0.25rem; }
table.layout .ci { display: block; font-weight: normal; white-space: nowrap; font-size: 0.86em; }
table.layout tbody th { text-align: left; font-weight: 600; }
table.layout td.cell { text-align: right; }
table.layout .paper { display: block; font-weight: 600; }
table.layout .run { display: block; color: #475569; margin-top: 0.15rem; }
table.layout tr.oracle td { background: #f8fafc; font-style: italic; }
.notes { font-size: 0.85rem; max-width: 60rem; }
.notes li { margin: 0.2rem 0; }
"""


@dataclass(frozen=True)
class Layout:
    """One table in the paper's layout.

    Attributes:
        section: "Table 1", "Table 2" or "Table 3".
        cells: one row per cell: ``row, column, id, status, paper, run, note, printed`` (display strings;
            ``note`` the footnote mark of an inferred or lost cell; ``printed`` whether the stored page prints
            the cell in this table), rows and columns in the paper's order.
        footnotes: mark -> text.
        printed: cells the page prints (read, or inferred from a surviving cell of the table).
        shown: of those, cells shown as the paper's value.
        oracle: the oracle's cell per column ("" without an oracle).
    """

    section: str
    cells: pd.DataFrame
    footnotes: dict[str, str]
    printed: int
    shown: int
    oracle: dict[str, str]


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def paper_cell(entry: pd.Series) -> str:
    """The paper's cell as printed: ``value (low–high)``, ``value ± sd`` or ``count (share)``."""
    if pd.isna(entry["value"]):
        return LOST
    decimals = int(entry["decimals"])
    text = _number(entry["value"], decimals)
    if pd.notna(entry.get("count")):
        return f"{int(entry['count'])} ({text})"
    if pd.notna(entry.get("sd")):
        return f"{text} ± {_number(entry['sd'], decimals)}"
    if isinstance(entry.get("ci"), list):
        ci_decimals = int(entry["ci_decimals"]) if pd.notna(entry.get("ci_decimals")) else decimals
        low, high = entry["ci"]
        return f"{text} ({_number(low, ci_decimals)}–{_number(high, ci_decimals)})"
    return text


def run_cell(
    value: float, low: float, high: float, sd: float, decimals: int, ci_decimals: int | None = None
) -> str:
    """This run's number: ``value (low–high)`` or ``value ± sd``; an em dash where the run has none."""
    if not np.isfinite(value):
        return "—"
    text = _number(value, decimals)
    ci_decimals = decimals if ci_decimals is None else ci_decimals
    if np.isfinite(sd):
        return f"{text} ± {_number(sd, decimals)}"
    if np.isfinite(low) and np.isfinite(high):
        return f"{text} ({_number(low, ci_decimals)}–{_number(high, ci_decimals)})"
    return text


def _ci_decimals(entry: pd.Series) -> int:
    # The run's interval to the paper's printed precision of intervals (one decimal in tables 2-3), also
    # where the paper prints none (a lost cell, the Average row).
    if pd.notna(entry.get("ci_decimals")):
        return int(entry["ci_decimals"])
    return 1 if entry["unit"] == "percent" else _run_decimals(entry)


def two_lines(text: str, mark: str = "") -> str:
    """A cell's value (with its footnote mark) and its interval on two lines, so that six columns fit the
    report's panel."""
    value, bracket, interval = text.partition(" (")
    sup = f"<sup>{html.escape(mark)}</sup>" if mark else ""
    if "–" not in interval:  # a count with its share, "351 (74.05)": one line
        value, bracket = text, ""
    return html.escape(value) + sup + (f'<span class="ci">({html.escape(interval)}</span>' if bracket else "")


def _run_decimals(entry: pd.Series) -> int:
    # The paper's own decimals keep the two lines of a cell comparable at a glance; shares get two, as
    # the paper prints nearly all of them (its 65.9 and CTNet's AUC 84.2 have one).
    if entry["unit"] == "count":
        return 0
    return max(int(entry["decimals"]), 2 if entry["unit"] == "percent" else 1)


def paper_layout(values: PaperValues, reproduced: pd.DataFrame, section: str) -> Layout:
    """One of the paper's tables with its cells beside this run's.

    Args:
        values: the paper's values.
        reproduced: ``results/paper/comparison.tsv`` (:data:`htct.paper.comparison.REPRODUCED_COLUMNS`).
        section: "Table 1", "Table 2" or "Table 3".

    Returns:
        :class:`Layout`.

    Raises:
        ValueError: for a section the values file has no entries of.
    """
    entries = values.entries[values.entries["section"] == section]
    if entries.empty:
        raise ValueError(f"the paper values have no entries of {section}")
    merged = entries.merge(reproduced, on="id", how="left", validate="1:1")
    footnotes: dict[str, str] = {}
    marks: dict[str, str] = {}
    rows = []
    for _, entry in merged.iterrows():
        note = ""
        if entry["status"] == "inferred":
            argument = str(entry["inference"])
            if argument not in marks:
                marks[argument] = "†" * (len(marks) + 1) if len(marks) < 3 else f"†{len(marks) + 1}"
                footnotes[marks[argument]] = f"inferred, not read: {argument}"
            note = marks[argument]
        elif entry["status"] == "missing":
            note = "*"
            footnotes["*"] = (
                "lost: the stored page's text extraction lost this cell and the text prints no value for it"
            )
        reproduced_sd = entry["reproduced_sd"] if "reproduced_sd" in entry else np.nan
        rows.append(
            {
                "row": entry["row"],
                "column": entry["column"],
                "id": entry["id"],
                "status": entry["status"],
                "paper": paper_cell(entry),
                "run": run_cell(
                    float(entry["reproduced"]),
                    float(entry["reproduced_low"]),
                    float(entry["reproduced_high"]),
                    float(reproduced_sd) if pd.notna(reproduced_sd) else np.nan,
                    _run_decimals(entry),
                    _ci_decimals(entry),
                ),
                "note": note,
                # printed in the table: read, or inferred from a surviving cell whose column was lost
                "printed": entry["status"] == "read"
                or (entry["status"] == "inferred" and pd.notna(entry["quote"])),
            }
        )
    cells = pd.DataFrame(rows)
    oracle = {}
    if "oracle" in merged and merged["oracle"].notna().any():
        for column, group in merged.groupby("column", sort=False):
            known = group[group["oracle"].notna()]
            if known.empty:
                oracle[column] = "—"
                continue
            first = known.iloc[0]
            oracle[column] = run_cell(
                float(first["oracle"]),
                float(first["oracle_low"]),
                float(first["oracle_high"]),
                np.nan,
                _run_decimals(first),
                _ci_decimals(first),
            )
    printed = int(cells["printed"].sum())
    shown = int((cells["printed"] & (cells["paper"] != LOST)).sum())
    return Layout(section, cells, footnotes, printed, shown, oracle)


def layout_table(layout: Layout) -> pd.DataFrame:
    """The table as tidy rows, for programs and the run's report: one row per cell (row, column, id,
    status, note, paper, run, footnote: the text of the cell's mark), then the oracle's cells (status
    ``oracle``, row :data:`ORACLE_ROW`, the paper's side empty), in the paper's order."""
    cells = layout.cells[["row", "column", "id", "status", "note", "paper", "run"]].copy()
    cells["footnote"] = [layout.footnotes.get(note, "") for note in cells["note"]]
    columns = list(dict.fromkeys(layout.cells["column"]))
    oracle = pd.DataFrame(
        [
            {"row": ORACLE_ROW, "column": column, "id": "", "status": "oracle", "note": "", "paper": ""}
            | {"run": layout.oracle.get(column, "—"), "footnote": ""}
            for column in columns
        ]
        if layout.oracle
        else [],
        columns=cells.columns,
    )
    return pd.concat([cells, oracle], ignore_index=True)


def layout_html(layout: Layout, synthetic: bool, citation: str) -> str:
    """The table as a report page: the paper's layout, the notes under it, the synthetic notice above."""
    columns = list(dict.fromkeys(layout.cells["column"]))
    row_names = list(dict.fromkeys(layout.cells["row"]))
    grid = layout.cells.set_index(["row", "column"])
    head = "".join(f'<th class="number">{html.escape(str(c))}</th>' for c in columns)
    body = []
    for row in row_names:
        tds = []
        for column in columns:
            if (row, column) not in grid.index:
                tds.append('<td class="cell"></td>')
                continue
            cell = grid.loc[(row, column)]
            tds.append(
                f'<td class="cell" title="{html.escape(cell["id"])}">'
                f'<span class="paper">{two_lines(cell["paper"], cell["note"])}</span>'
                f'<span class="run">{two_lines(cell["run"])}</span></td>'
            )
        body.append(f"<tr><th>{html.escape(str(row))}</th>{''.join(tds)}</tr>")
    if layout.oracle:
        tds = "".join(
            f'<td class="cell"><span class="run">{two_lines(layout.oracle.get(c, "—"))}</span></td>'
            for c in columns
        )
        body.append(f'<tr class="oracle"><th>{html.escape(ORACLE_ROW)}</th>{tds}</tr>')
    cell_note = (
        "Each cell: <strong>the paper's value</strong> as printed, n (%) or mean ± SD, above; this run's share of "
        "the column's patients (%) or mean ± SD below."
        if layout.section == "Table 1"
        else "Each cell: <strong>the paper's value</strong> as printed (95% CI as printed) above, this run's value "
        "(95% CI, patient-level bootstrap) below, in percent as the paper prints them."
        + (
            " Table 3's F1 is the macro-F1 (mean of both classes' F1), this run's too."
            if layout.section == "Table 3"
            else ""
        )
    )
    notes = [
        cell_note,
        f"{layout.shown} of the {layout.printed} cells the stored page prints in {layout.section} are shown as "
        f"the paper's value; {int((layout.cells['status'] == 'inferred').sum())} cells are inferred (†), "
        f"{int((layout.cells['status'] == 'missing').sum())} lost (*).",
    ]
    if layout.oracle:
        notes.append(
            f"<em>{html.escape(ORACLE_ROW)}</em>: one oracle for the whole table, not a rater: the synthetic "
            "cohort's image-only probability (the generator's truth) on the same test scans, called at 0.5, with "
            "the same bootstrap. No model or clinician that sees only the scan can do better on average."
        )
    notes += [
        f"<sup>{html.escape(mark)}</sup> {html.escape(text)}" for mark, text in layout.footnotes.items()
    ]
    notes.append(f"Paper: {html.escape(citation)}. Values from resources/paper/zhang2026.yaml.")
    table = (
        f'<table class="layout"><caption>{html.escape(TITLES[layout.section])}</caption>'
        f"<thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
    page_notes = '<ul class="notes">' + "".join(f"<li>{n}</li>" for n in notes) + "</ul>"
    document = html_document(TITLES[layout.section], notice_html(synthetic) + table + page_notes + "\n")
    return document.replace("</style>", LAYOUT_STYLE + "</style>", 1)
