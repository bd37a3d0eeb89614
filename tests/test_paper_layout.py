"""Tables 1-3 in the paper's layout (htct.paper.layout): cells, marks, the oracle row and the counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from htct.paper.comparison import (
    REPRODUCED_COLUMNS,
    comparison_counts,
    comparison_html,
    comparison_table,
    comparison_title,
    paper_implied_prevalence,
    reference_rows,
)
from htct.paper.layout import LOST, ORACLE_ROW, layout_html, layout_table, paper_cell, paper_layout
from htct.paper.values import load_paper_values, paper_values_from_dict

VALUES_FILE = Path(__file__).resolve().parents[1] / "resources" / "paper" / "zhang2026.yaml"


def _entry(entry_id: str, row: str, column: str, value: float | None, **extra) -> dict:
    status = extra.pop("status", "read" if value is not None else "missing")
    return {
        "id": entry_id,
        "section": "Table 2",
        "row": row,
        "column": column,
        "quantity": entry_id,
        "value": value,
        "decimals": 2,
        "unit": "percent",
        "status": status,
        **({"source": "constructed"} if value is not None else {}),
        **extra,
    }


def _reproduced(ids: list[str], value: float = 50.0, oracle: float | None = 70.0) -> pd.DataFrame:
    frame = pd.DataFrame({"id": ids})
    for column in REPRODUCED_COLUMNS[1:]:
        frame[column] = np.nan
    frame["reproduced"], frame["reproduced_low"], frame["reproduced_high"] = value, value - 10, value + 10
    if oracle is not None:
        frame["oracle"], frame["oracle_low"], frame["oracle_high"] = oracle, oracle - 5, oracle + 5
    frame["reproduced_from"] = ""
    return frame


def test_cells_marks_and_the_oracle_row_on_a_constructed_table() -> None:
    values = paper_values_from_dict(
        {
            "paper": {"citation": "constructed", "text_source": "tests"},
            "entries": [
                _entry("t.a.acc", "A", "Accuracy", 64.0, ci=[52.5, 73.8], ci_decimals=1),
                _entry("t.a.spec", "A", "Specificity", None),
                _entry("t.b.acc", "B", "Accuracy", 74.52, status="inferred", inference="from the text"),
                _entry(
                    "t.b.spec",
                    "B",
                    "Specificity",
                    80.29,
                    status="inferred",
                    inference="the row agrees with itself",
                    quote="80.29",
                ),
            ],
        },
        "constructed",
    )
    layout = paper_layout(values, _reproduced(["t.a.acc", "t.a.spec", "t.b.acc", "t.b.spec"]), "Table 2")
    cells = layout.cells.set_index("id")
    assert cells.loc["t.a.acc", ["paper", "run", "note"]].tolist() == [
        "64.00 (52.5–73.8)",
        "50.00 (40.0–60.0)",
        "",
    ]
    assert cells.loc["t.a.spec", ["paper", "note"]].tolist() == [LOST, "*"]
    # two arguments, two marks; each footnote says the cell is inferred and why
    assert cells.loc["t.b.acc", "note"] == "†" and cells.loc["t.b.spec", "note"] == "††"
    assert layout.footnotes["††"] == "inferred, not read: the row agrees with itself"
    # printed cells: the read one and the inferred one that survived in the table (it has a quote)
    assert (layout.printed, layout.shown) == (2, 2)
    assert layout.oracle == {"Accuracy": "70.00 (65.0–75.0)", "Specificity": "70.00 (65.0–75.0)"}
    page = layout_html(layout, synthetic=True, citation="constructed")
    assert page.count(ORACLE_ROW) == 2  # the row and its note: one oracle, stated once
    assert "SYNTHETIC" in page and "2 of the 2 cells" in page and "1 lost (*)" in page
    assert "inferred, not read: from the text" in page
    # a run that is not synthetic has no oracle row
    plain = paper_layout(
        values, _reproduced(["t.a.acc", "t.a.spec", "t.b.acc", "t.b.spec"], oracle=None), "Table 2"
    )
    assert plain.oracle == {} and ORACLE_ROW not in layout_html(plain, synthetic=False, citation="c")
    # the tidy twin of the page (read by the run's report): every cell, its mark's footnote, the oracle last
    tidy = layout_table(layout)
    assert tidy["id"].tolist() == ["t.a.acc", "t.a.spec", "t.b.acc", "t.b.spec", "", ""]
    assert tidy.loc[3, ["note", "footnote"]].tolist() == [
        "††",
        "inferred, not read: the row agrees with itself",
    ]
    assert tidy.loc[0, "footnote"] == "" and tidy.loc[1, "paper"] == LOST
    oracle = tidy[tidy["status"] == "oracle"]
    assert oracle["row"].tolist() == [ORACLE_ROW] * 2 and oracle["run"].tolist() == ["70.00 (65.0–75.0)"] * 2
    assert ORACLE_ROW not in set(layout_table(plain)["row"])
    with pytest.raises(ValueError, match="no entries of Table 3"):
        paper_layout(values, _reproduced([]), "Table 3")


def test_paper_cells_print_as_the_page_prints_them() -> None:
    entry = pd.Series(
        {"value": 74.05, "decimals": 2, "count": 351.0, "sd": np.nan, "ci": None, "ci_decimals": np.nan}
    )
    assert paper_cell(entry) == "351 (74.05)"
    age = pd.Series(
        {"value": 62.45, "decimals": 2, "count": np.nan, "sd": 11.85, "ci": None, "ci_decimals": np.nan}
    )
    assert paper_cell(age) == "62.45 ± 11.85"
    zero = pd.Series(
        {"value": 0.0, "decimals": 2, "count": 0.0, "sd": np.nan, "ci": None, "ci_decimals": np.nan}
    )
    assert paper_cell(zero) == "0 (0.00)"


def test_the_papers_three_tables_have_the_papers_rows_columns_and_printed_cells() -> None:
    values = load_paper_values(VALUES_FILE)
    reproduced = _reproduced(list(values.entries["id"]))
    expected = {
        "Table 1": (24, ["Total", "Training", "Test"], 8),
        "Table 2": (52, ["Accuracy", "Sensitivity", "Specificity", "PPV", "F1", "AUC"], 10),
        "Table 3": (9, ["Accuracy", "Sensitivity", "Specificity", "F1"], 3),
    }
    for section, (printed, columns, n_rows) in expected.items():
        layout = paper_layout(values, reproduced, section)
        assert (layout.printed, layout.shown) == (printed, printed), section
        assert list(dict.fromkeys(layout.cells["column"])) == columns
        assert layout.cells["row"].nunique() == n_rows
    table2 = paper_layout(values, reproduced, "Table 2")
    rows = list(dict.fromkeys(table2.cells["row"]))
    assert rows == ["CTNet", *(f"Clinician {r}" for r in range(1, 9)), "Average (clinician)"]
    cells = table2.cells.set_index("id")
    assert (
        cells.loc["table2.ctnet.ppv", "paper"] == "87.48 (79.5–96.7)"
        and cells.loc["table2.ctnet.ppv", "note"]
    )
    assert (
        cells.loc[[f"table2.clinician{r}.{m}" for r in (4, 8) for m in ("specificity", "ppv")], "paper"]
        == LOST
    ).all()
    table3 = paper_layout(values, reproduced, "Table 3")
    assert list(dict.fromkeys(table3.cells["row"])) == ["CTNet", "Marcin Woz nia", "Soundari D V"]


def test_the_comparison_shows_every_printed_cell_with_units_and_one_oracle_per_metric() -> None:
    values = load_paper_values(VALUES_FILE)
    reproduced = _reproduced(list(values.entries["id"]))
    auc = reproduced["id"].str.endswith(".auc")
    text_auc = reproduced["id"].isin(["text.ctnet.auc", "text.ctnet.auc_results"])
    reproduced.loc[text_auc, ["reproduced", "reproduced_low", "reproduced_high"]] = [0.5, 0.4, 0.6]
    reproduced.loc[text_auc, ["oracle", "oracle_low", "oracle_high"]] = [0.7, 0.65, 0.75]
    assert auc.any()
    table = comparison_table(values, reproduced, synthetic=True)
    by_id = table.assign(id=values.entries["id"].to_numpy()).set_index("id")
    # every printed cell is the paper's value; lost ones say so; inferred ones carry the dagger and argument
    assert by_id.loc["table2.clinician1.accuracy", "Paper"] == "64.00 (52.5–73.8)"
    assert by_id.loc["table1.test.male", "Paper"] == "47 (77.05)"
    assert by_id.loc["table2.clinician4.specificity", "Paper"] == LOST
    assert by_id.loc["table2.ctnet.ppv", "Paper"] == "87.48 (79.5–96.7) †"
    assert "† inferred: CTNet's row keeps two cells" in by_id.loc["table2.ctnet.ppv", "Source and note"]
    assert not table["Status"].isin(["verified", "unverified"]).any()
    # the difference says its unit: percentage points for percentages, AUC units for a fractional AUC
    assert by_id.loc["table2.clinician1.accuracy", "Difference"] == "-14.00 pp"
    assert by_id.loc["text.ctnet.auc", "Difference"] == "-0.342 AUC"
    assert by_id.loc["text.patients", "Difference"] == ""
    # one oracle per metric and section: on Table 2's first accuracy row only
    table2_accuracy = by_id[by_id.index.str.match(r"table2\..*\.accuracy")]["Oracle (95% CI)"]
    assert table2_accuracy.tolist()[0] == "70.00 (65.00–75.00)" and set(table2_accuracy.tolist()[1:]) == {""}
    counts = comparison_counts(values, table)
    assert counts == {
        "printed": 85,
        "shown": 85,
        "inferred": 8,
        "inferred_from_text": 5,
        "lost": 6,
        "text": 40,
    }
    title = comparison_title(values, table)
    assert "85 of the 85 cells the stored page prints are shown as the paper's value" in title


def test_the_comparison_page_keeps_sentences_out_of_the_number_columns() -> None:
    values = load_paper_values(VALUES_FILE)
    table = comparison_table(values, _reproduced(list(values.entries["id"])), synthetic=True)
    page = comparison_html(table, comparison_title(values, table), synthetic=True)
    head = page[page.index("<thead>") : page.index("</thead>")]
    # five columns: the quantity (its source and note in small type under it) and four of numbers
    assert head.count("</th>") == 5 and "Source" not in head and "This run − paper" in head
    assert '<tr class="section"><th colspan="5">Table 2</th></tr>' in page
    assert '<span class="source">Table 2, row &#x27;Clinician 1&#x27;, column Accuracy</span>' in page
    assert "85 of the 85 cells the stored page prints are shown as the paper" in page and "SYNTHETIC" in page
    # the interval under its value, never broken inside
    assert '64.00<span class="ci">(52.5–73.8)</span>' in page


def test_table1_cells_keep_count_and_share_on_one_line() -> None:
    values = load_paper_values(VALUES_FILE)
    reproduced = _reproduced(list(values.entries["id"]), oracle=None)
    page = layout_html(paper_layout(values, reproduced, "Table 1"), synthetic=False, citation="c")
    assert '<span class="paper">351 (74.05)</span>' in page and "n (%) or mean ± SD" in page
    table2 = layout_html(paper_layout(values, reproduced, "Table 2"), synthetic=False, citation="c")
    assert '<span class="paper">64.00<span class="ci">(52.5–73.8)</span></span>' in table2


def _metrics_every_scan_ht(prevalence: float) -> pd.DataFrame:
    """The evaluation's every-scan-HT rater at a known HT share (values as the bootstrap table has them)."""
    p = prevalence
    values = {"accuracy": p, "sensitivity": 1.0, "specificity": 0.0, "ppv": p, "f1": 2 * p / (1 + p)}
    values |= {"macro_f1": p / (1 + p), "auc": 0.5}
    return pd.DataFrame(
        [{"rater": "every_scan_ht", "metric": m, "value": v, "low": v, "high": v} for m, v in values.items()]
    )


def test_the_every_scan_ht_reference_sits_at_the_papers_implied_ht_share_and_the_runs() -> None:
    """The trivial reference row of the comparison: at the HT share the paper's CTNet row implies, and this
    run's every_scan_ht rater; it is no paper cell, so the printed-cell count is unchanged."""
    values = load_paper_values(VALUES_FILE)
    low, high = paper_implied_prevalence(values)
    # accuracy 74.52, sensitivity 71.55, specificity 80.29 (inferred): (a - c) / (s - c) = 0.660 at the printed values
    assert low < (0.7452 - 0.8029) / (0.7155 - 0.8029) < high and high - low < 0.01
    rows = reference_rows(values, _metrics_every_scan_ht(0.6), synthetic=True)
    quantities = rows.index.get_level_values("Quantity")
    by_quantity = rows.reset_index(level="Section", drop=True)
    f1 = quantities[quantities.str.startswith("F1, HT class")][0]
    macro = quantities[quantities.str.startswith("F1, macro")][0]
    assert by_quantity.loc[f1, "Paper"] == f"{200 * low / (1 + low):.1f}–{200 * high / (1 + high):.1f}"
    assert by_quantity.loc[f1, "Reproduced (95% CI)"] == "75.00 (75.00–75.00)"  # 2p/(1+p) at p = 0.6
    assert by_quantity.loc[macro, "Reproduced (95% CI)"] == "37.50 (37.50–37.50)"
    assert by_quantity.loc["Sensitivity", "Paper"] == "100.0" and by_quantity.loc["AUC", "Paper"] == "50.0"
    assert (rows["Status"] == "derived").all() and "not printed by the paper" in rows["Source and note"].iloc[
        0
    ]
    table = comparison_table(values, _reproduced(list(values.entries["id"])), synthetic=True)
    with_reference = pd.concat([table, rows])
    assert comparison_counts(values, with_reference) == comparison_counts(values, table)
    # a run without the reference rater shows a dash, not a number
    assert (
        reference_rows(values, _metrics_every_scan_ht(0.6).iloc[:0], True)["Reproduced (95% CI)"] == "—"
    ).all()
