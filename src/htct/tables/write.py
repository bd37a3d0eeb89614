"""Write a table as .csv, .md and .tex, with its title and, for synthetic data, the notice."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from htct import SYNTHETIC_NOTICE


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


def write_table(table: pd.DataFrame, stem: str | Path, title: str, synthetic: bool) -> list[Path]:
    """Write `table` to `{stem}.csv`, `{stem}.md` and `{stem}.tex`.

    The CSV keeps the index as columns and starts with `#` comment lines (title, synthetic notice);
    read it back with `pd.read_csv(path, comment="#")`.

    Args:
        table: the table; its (multi-)index becomes the leading columns.
        stem: output path without extension.
        title: caption, e.g. "Table 1. Baseline characteristics".
        synthetic: whether the data come from the synthetic cohort (adds the notice everywhere).

    Returns:
        The three paths written.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    notes = [title] + ([SYNTHETIC_NOTICE] if synthetic else [])
    flat = table.reset_index()
    flat.columns = [str(column) for column in flat.columns]
    for name in table.index.names:
        if name is not None:
            # Show a group label once, as the paper's tables do.
            flat[name] = flat[name].where(flat[name] != flat[name].shift(), "")

    csv_text = "".join(f"# {note}\n" for note in notes) + table.reset_index().to_csv(index=False)
    md_text = "".join(f"**{note}**\n\n" if i == 0 else f"> {note}\n\n" for i, note in enumerate(notes))
    md_text += _markdown(flat)
    body = flat.map(lambda value: _latex_escape(str(value)))
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
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    for path, text in zip(paths, (csv_text, md_text, tex_text), strict=True):
        _atomic_write(path, text)
    return paths


def _markdown(flat: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pandas.to_markdown would add the tabulate dependency)."""
    lines = ["| " + " | ".join(flat.columns) + " |", "|" + "---|" * len(flat.columns)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in flat.to_numpy().tolist()]
    return "\n".join(lines) + "\n"
