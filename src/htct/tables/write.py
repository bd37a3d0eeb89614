"""Write a table four ways: a tidy CSV for programs, Markdown and LaTeX for manuscripts, HTML for
the report; each with its title and, for synthetic data, the notice.

Missing values print one way everywhere: an en dash ("–") in the pretty tables (md, tex, html), an
empty field in the tidy CSV.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from htct import SYNTHETIC_NOTICE
from htct.report.html import PROSE_CHARACTERS, html_document, notice_html

MISSING = "–"
"""How a missing value prints in the pretty tables (md, tex, html)."""

# Cells that mean "no value" however a table builder spelled them (NaN, None, "NA", "nan").
_MISSING_SPELLINGS = {"NA", "N/A", "nan", "NaN", "<NA>"}
# A cell that reads as a number ("61.54 (26.62–90.06)", "-1.328", "<0.001", "120 (68.2)"): its
# column is right-aligned in the HTML page; text columns stay left-aligned.
_NUMBER = re.compile(r"^[<>]?[-−]?\d")


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so a crash never leaves a half-written table."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _latex_escape(text: str) -> str:
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
    ):
        text = text.replace(char, escaped)
    return text.replace("±", r"$\pm$").replace("–", "--")


def _pretty_cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    text = str(value)
    return MISSING if text in _MISSING_SPELLINGS else text


def pretty_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as display strings: the index as leading columns, each group label shown once (as
    the paper's tables do), every missing value as `MISSING`."""
    flat = table.reset_index()
    flat.columns = [str(column) for column in flat.columns]
    flat = flat.astype(object).map(_pretty_cell)
    for name in table.index.names:
        if name is not None:
            flat[name] = flat[name].where(flat[name] != flat[name].shift(), "")
    return flat


def write_table(
    table: pd.DataFrame,
    stem: str | Path,
    title: str,
    synthetic: bool,
    *,
    tidy: pd.DataFrame | None = None,
    html_notes: Sequence[str] = (),
) -> list[Path]:
    """Write `{stem}.csv` (tidy), `{stem}.md`, `{stem}.tex` and `{stem}.html` (pretty).

    The CSV is for programs: no comment lines, one row per observation, numbers as numbers (e.g.
    one column each for estimate, lower and upper), missing values empty, and a `synthetic` column
    saying whether the data are the synthetic cohort; ``pandas.read_csv(path)`` reads it as is.
    Without `tidy` it holds the pretty table's cells (index as leading columns).

    Args:
        table: the pretty table (display strings); its (multi-)index becomes the leading columns.
        stem: output path without extension.
        title: caption, e.g. "Table 1. Baseline characteristics".
        synthetic: whether the data come from the synthetic cohort (adds the notice to the pretty
            tables and sets the CSV's `synthetic` column).
        tidy: the same table as numbers, in long (tidy) form; the table builders of
            :mod:`htct.tables` return it beside the pretty one.
        html_notes: columns of long text that the HTML page shows under each row, across the table's
            width, instead of as columns (a table of several such columns does not fit the report's
            width otherwise); the other formats keep them as columns.

    Returns:
        The paths written: csv, md, tex, html.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    notes = [title] + ([SYNTHETIC_NOTICE] if synthetic else [])
    flat = pretty_frame(table)

    if tidy is not None:
        machine = tidy.reset_index(drop=isinstance(tidy.index, pd.RangeIndex))
    else:
        machine = table.reset_index().astype(object).map(lambda v: "" if _pretty_cell(v) == MISSING else v)
    machine["synthetic"] = bool(synthetic)
    csv_text = machine.to_csv(index=False, na_rep="")
    md_text = "".join(f"**{note}**\n\n" if i == 0 else f"> {note}\n\n" for i, note in enumerate(notes))
    md_text += _markdown(flat)
    body = flat.map(_latex_escape)
    header = " & ".join(_latex_escape(column) for column in flat.columns) + r" \\"
    rows = "\n".join(" & ".join(row) + r" \\" for row in body.to_numpy().tolist())
    tex_text = (
        "\\begin{table}[ht]\n\\centering\n"
        f"\\caption{{{_latex_escape(title)}"
        + (f" \\textbf{{{_latex_escape(SYNTHETIC_NOTICE)}}}" if synthetic else "")
        + "}\n"
        f"\\begin{{tabular}}{{{'l' * len(table.index.names)}{'r' * len(table.columns)}}}\n\\hline\n"
        f"{header}\n\\hline\n{rows}\n\\hline\n\\end{{tabular}}\n\\end{{table}}\n"
    )
    html_text = table_html(flat, title, synthetic, n_label_columns=len(table.index.names), notes=html_notes)
    paths = [stem.with_suffix(suffix) for suffix in (".csv", ".md", ".tex", ".html")]
    for path, text in zip(paths, (csv_text, md_text, tex_text, html_text), strict=True):
        _atomic_write(path, text)
    return paths


def _markdown(flat: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pandas.to_markdown would add the tabulate dependency)."""
    lines = ["| " + " | ".join(flat.columns) + " |", "|" + "---|" * len(flat.columns)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in flat.to_numpy().tolist()]
    return "\n".join(lines) + "\n"


def table_html(
    flat: pd.DataFrame, title: str, synthetic: bool, n_label_columns: int = 1, notes: Sequence[str] = ()
) -> str:
    """A self-contained HTML page of a pretty table (no scripts, no external files), as the
    Snakemake report shows it inline.

    Args:
        flat: display strings, label columns first (see :func:`pretty_frame`).
        title: the table's caption.
        synthetic: adds the synthetic-cohort notice above the table.
        n_label_columns: how many leading columns are row labels (groups in bold); of the other
            columns those whose every cell reads as a number are right-aligned.
        notes: columns shown under each row, across the table ("Name: text" each), not as columns.

    Returns:
        The HTML document.
    """
    missing = [name for name in notes if name not in flat.columns]
    if missing:
        raise ValueError(f"note columns {missing} are not columns of the table")
    note_rows = flat[list(notes)]
    flat = flat.drop(columns=list(notes))
    numeric = [
        k >= n_label_columns
        and all(_NUMBER.match(str(v)) or str(v) in ("", MISSING) for v in flat.iloc[:, k])
        for k in range(flat.shape[1])
    ]
    # Columns of sentences (a test's description, a source) wrap; numbers and short labels do not.
    prose = [any(len(str(v)) > PROSE_CHARACTERS for v in flat.iloc[:, k]) for k in range(flat.shape[1])]
    head = "".join(
        ('<th class="number">' if numeric[k] else "<th>") + f"{html.escape(column)}</th>"
        for k, column in enumerate(flat.columns)
    )
    rows = []
    for i, row in enumerate(flat.to_numpy().tolist()):
        cells = []
        for k, value in enumerate(row):
            css = "group" if k == 0 and n_label_columns > 1 else ("number" if numeric[k] else "label")
            css += " prose" if prose[k] and not numeric[k] else ""
            cells.append(f'<td class="{css}">{html.escape(str(value))}</td>')
        rows.append(('<tr class="noted">' if notes else "<tr>") + "".join(cells) + "</tr>")
        if notes:
            text = "<br>".join(
                f"<strong>{html.escape(name)}:</strong> {html.escape(str(note_rows.iloc[i][name]))}"
                for name in notes
            )
            rows.append(f'<tr class="note"><td colspan="{flat.shape[1]}">{text}</td></tr>')
    body = (
        f"{notice_html(synthetic)}<table>\n<caption>{html.escape(title)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
    )
    return html_document(title, body)
