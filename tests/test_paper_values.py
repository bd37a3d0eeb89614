"""The values file against the stored page: every printed cell of tables 1-3 has its entry, in its row and
column, and every number read from the text is in the sentence it quotes.

The page is ``../shared/paper/zhang2026_page.txt`` (relative to the repository root), or the file named by
``HTCT_PAPER_PAGE`` (for checkouts whose ``../shared`` is elsewhere).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from htct.paper.values import load_paper_values

REPO = Path(__file__).resolve().parents[1]
VALUES_FILE = REPO / "resources" / "paper" / "zhang2026.yaml"
PAGE = Path(os.environ.get("HTCT_PAPER_PAGE", REPO.parent / "shared" / "paper" / "zhang2026_page.txt"))
TABLES = {4: "Table 1", 7: "Table 2", 5: "Table 3"}
"""A table's header separator has one more '|' than the table's columns: 3, 6 and 4 data columns."""
CELL = re.compile(
    r"^(?P<value>\d+(?:\.\d+)?)"
    r"(?: \((?P<low>\d+(?:\.\d+)?)(?:–(?P<high>\d+(?:\.\d+)?))?\)| ± (?P<sd>\d+(?:\.\d+)?))?$"
)


@pytest.fixture(scope="module")
def page() -> str:
    if not PAGE.is_file():
        pytest.skip(
            f"the stored paper page is not at {PAGE} (the project's ../shared/paper; or set HTCT_PAPER_PAGE)"
        )
    return PAGE.read_text(encoding="utf-8")


def printed_cells(page: str) -> list[dict]:
    """Every non-empty table cell of the page: table, row label, position among the row's cells, numbers."""
    cells, table, row = [], None, None
    for line in page.splitlines():
        if line.startswith("Peer Reviews"):
            break
        if re.fullmatch(r"(\|---)+\|", line):
            table = TABLES[line.count("|") - 1]
            continue
        if table is None or not line.startswith("| ") or not re.search(r"\d", line):
            if table is not None and line.startswith("| ") and line.strip("| "):
                row = line.strip("| ").strip()  # a row label on its own line (CTNet)
            continue
        parts = [part.strip() for part in line.strip().strip("|").split("|")]
        if parts and not CELL.match(parts[0]):
            row, parts = parts[0], parts[1:]
        for position, text in enumerate(p for p in parts if p):
            match = CELL.match(text)
            assert match, f"unparsed cell {text!r} in {table} row {row}"
            cells.append(
                {"table": table, "row": row, "position": position, "text": text, **match.groupdict()}
            )
    return cells


def _same(entry: pd.Series, cell: dict) -> bool:
    """Whether an entry holds the printed cell (value and interval, count and share, or mean ± SD)."""
    value = float(cell["value"])
    if pd.notna(entry["count"]):
        return entry["count"] == value and cell["low"] is not None and entry["value"] == float(cell["low"])
    if entry["value"] != value:
        return False
    if cell["sd"] is not None:
        return entry["sd"] == float(cell["sd"])
    if cell["high"] is not None:
        return isinstance(entry["ci"], list) and entry["ci"] == [float(cell["low"]), float(cell["high"])]
    return not isinstance(entry["ci"], list)


def test_every_printed_table_cell_is_an_entry_in_its_row_and_column(page) -> None:
    entries = load_paper_values(VALUES_FILE).entries
    cells = printed_cells(page)
    counts = pd.Series([c["table"] for c in cells]).value_counts().to_dict()
    assert counts == {"Table 1": 24, "Table 2": 52, "Table 3": 9}  # the 85 cells the issue counts
    used = set()
    for cell in cells:
        section = entries[entries["section"] == cell["table"]]
        row = section[section["row"] == cell["row"]]
        assert not row.empty, f"{cell['table']}: no entries for row {cell['row']!r}"
        complete = len([c for c in cells if c["table"] == cell["table"] and c["row"] == cell["row"]]) == len(
            row
        )
        if complete:  # every cell of the row survived: its position is its column
            entry = row.iloc[cell["position"]]
            assert _same(entry, cell), (
                f"{cell['table']} {cell['row']} cell {cell['position']}: {cell['text']}"
            )
            assert entry["status"] == "read", entry["id"]
        else:  # the row lost cells: the surviving ones are placed by inference or by the row's order
            matches = row[row.apply(_same, axis=1, cell=cell)]
            assert len(matches) == 1, f"{cell['table']} {cell['row']}: {cell['text']} is not one entry"
            entry = matches.iloc[0]
        used.add(entry["id"])
    # No table entry is marked read without its printed cell; the others are inferred or missing.
    tables = entries[entries["section"] != "Text"]
    unprinted = tables[~tables["id"].isin(used)]
    assert set(unprinted["status"]) <= {"inferred", "missing"}
    assert (tables.loc[tables["id"].isin(used), "status"] != "missing").all()
    missing = set(entries.loc[entries["status"] == "missing", "id"])
    assert missing == {
        *(f"table2.clinician{r}.{m}" for r in (4, 8) for m in ("specificity", "ppv")),
        "table3.ctnet.specificity",
        "table3.ctnet.macro_f1",
    }


def test_the_two_surviving_ctnet_cells_are_placed_as_inferred_with_their_argument() -> None:
    values = load_paper_values(VALUES_FILE)
    entries = values.entries.set_index("id")
    pair = entries.loc[["table2.ctnet.specificity", "table2.ctnet.ppv"]]
    assert set(pair["status"]) == {"inferred"}
    assert sorted(pair["value"]) == [80.29, 87.48]
    assert all(sorted(p) == ["table2.ctnet.ppv", "table2.ctnet.specificity"] for p in pair["placed_among"])
    assert all("placement of inferred cells" in text for text in pair["inference"])
    # The AUC in Table 2 is a percentage; the text's inferred CTNet AUC keeps the precision 0.842 gives.
    assert (entries.loc[entries["section"] == "Table 2", "unit"] == "percent").all()
    assert entries.loc["table2.ctnet.auc", ["value", "decimals", "status"]].tolist() == [84.2, 1, "inferred"]


def test_every_number_read_from_the_text_is_in_its_quoted_sentence(page) -> None:
    flat = " ".join(page.split())
    entries = load_paper_values(VALUES_FILE).entries
    text = entries[(entries["section"] == "Text") & (entries["status"] == "read")]
    assert len(text) >= 40
    for _, entry in text.iterrows():
        for fragment in str(entry["quote"]).split(" ... "):
            assert fragment in flat, f"{entry['id']}: quote not on the page: {fragment!r}"
        # printed in words or as a ratio: "eight" neurologists, the 9:1 split entered as its test share 10%
        printed = {"text.readers": "eight", "text.test_fraction": "9:1"}.get(
            entry["id"], f"{entry['value']:.{int(entry['decimals'])}f}"
        )
        assert printed in entry["quote"], f"{entry['id']}: {printed} not in its quote"
    # the numbers the issue lists are there, as read
    read = text.set_index("id")["value"]
    assert read[
        ["text.scans_elsewhere", "text.patients_ht_elsewhere", "text.train_patients", "text.train_scans"]
    ].tolist() == [
        611,
        243,
        437,
        548,
    ]
    assert read[
        [
            "text.readers.sensitivity.mean",
            "text.readers.auc.mean",
            "text.readers.auc.min",
            "text.readers.auc.max",
        ]
    ].tolist() == [
        45.48,
        0.677,
        0.630,
        0.751,
    ]
    assert read[
        ["text.other.dharmasaroja2012_auc", "text.other.scales_auc.min", "text.other.scales_auc.max"]
    ].tolist() == [
        0.787,
        0.56,
        0.68,
    ]


def test_the_values_file_names_the_stored_page_not_a_project_issue() -> None:
    values = load_paper_values(VALUES_FILE)
    assert "PMC12847036" in values.paper["text_source"] and "shared/paper" in values.paper["text_source"]
    words = " ".join(
        values.entries[["source", "note", "inference"]].fillna("").astype(str).agg(" ".join, axis=1)
    )
    assert "issue" not in words.lower()
    assert set(values.entries["status"]) == {"read", "inferred", "missing"}
