"""Table 1 numbers equal a direct pandas count; the writers emit csv/md/tex with the notice."""

import numpy as np
import pandas as pd
import pytest

from htct import SYNTHETIC_NOTICE
from htct.split import make_split
from htct.tables import MISSING, table1, table1_pretty, table1_tidy, write_table

MEDICATIONS = ["antiplatelet", "anticoagulant", "thrombolytic", "none", "not_available"]


def _clinical(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "label": (rng.random(n) < 0.4).astype(int),
            "age": rng.normal(66, 12, n).round(),
            "sex": rng.choice(["M", "F"], n, p=[0.68, 0.32]),
            "medication": rng.choice(MEDICATIONS, n),
        }
    )


def test_table1_equals_direct_count():
    clinical = _clinical()
    scans = pd.DataFrame({"scan_id": clinical["patient_id"] + "_scan1", "patient_id": clinical["patient_id"]})
    split = make_split(clinical, scans, seed=2)
    table = table1(clinical, split)
    merged = clinical.merge(split[["patient_id", "part"]], on="patient_id")
    groups = {
        "Total": merged,
        "Training": merged[merged["part"] != "test"],
        "Test": merged[merged["part"] == "test"],
    }
    assert list(table.columns) == [f"{name} (n={len(g)})" for name, g in groups.items()]
    for (_name, group), column in zip(groups.items(), table.columns, strict=True):
        cells = table[column]
        assert cells[("Patients, n", "")] == str(len(group))
        age = group["age"]
        assert cells[("Age, years, mean ± SD", "")] == f"{age.mean():.1f} ± {age.std():.1f}"
        male = (group["sex"] == "M").sum()
        assert cells[("Sex, n (%)", "Male")] == f"{male} ({100 * male / len(group):.1f})"
        counts = group["medication"].value_counts()
        assert cells[("Medication, n (%)", "Not available")].startswith(f"{counts.get('not_available', 0)} (")
        assert cells[("Medication, n (%)", "Antiplatelet")].startswith(f"{counts.get('antiplatelet', 0)} (")
        assert cells[("Haemorrhagic transformation, n (%)", "")].startswith(f"{group['label'].sum()} (")
    # Training + Test = Total for every count.
    for row in table.index:
        if row[0] != "Age, years, mean ± SD":
            total, training, test = (int(table.loc[row, column].split()[0]) for column in table.columns)
            assert training + test == total, row


def test_table1_tidy_holds_the_numbers_of_the_pretty_table():
    clinical = _clinical(60, seed=4)
    scans = pd.DataFrame({"scan_id": clinical["patient_id"] + "_scan1", "patient_id": clinical["patient_id"]})
    split = make_split(clinical, scans, seed=3, test_fraction=0.2)
    tidy = table1_tidy(clinical, split)
    assert list(tidy.columns) == [
        "characteristic",
        "level",
        "group",
        "group_n",
        "count",
        "percent",
        "mean",
        "sd",
    ]
    test = clinical[clinical["patient_id"].isin(split.loc[split["part"] == "test", "patient_id"])]
    age = tidy.query("group == 'Test' and characteristic == 'Age, years, mean ± SD'").iloc[0]
    assert age["mean"] == pytest.approx(test["age"].mean()) and age["sd"] == pytest.approx(test["age"].std())
    assert np.isnan(age["count"]) and np.isnan(age["percent"])
    female = tidy.query("group == 'Test' and level == 'Female'").iloc[0]
    assert female["count"] == (test["sex"] == "F").sum()
    assert female["percent"] == pytest.approx(100 * (test["sex"] == "F").mean())
    assert table1_pretty(tidy).equals(table1(clinical, split))


def test_write_table_formats(tmp_path):
    clinical = _clinical(40)
    scans = pd.DataFrame({"scan_id": clinical["patient_id"] + "_scan1", "patient_id": clinical["patient_id"]})
    split = make_split(clinical, scans, seed=2, test_fraction=0.2)
    table, tidy = table1(clinical, split), table1_tidy(clinical, split)
    paths = write_table(table, tmp_path / "table1", "Table 1. Baseline", synthetic=True, tidy=tidy)
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex", ".html"]
    # The CSV is tidy and plain: read without options, numbers as numbers, missing as empty.
    assert not paths[0].read_text().startswith("#")
    back = pd.read_csv(paths[0])
    assert list(back.columns) == [*tidy.columns, "synthetic"]
    assert back["synthetic"].all()
    assert back["level"].isna().sum() == (tidy["level"] == "").sum()  # rows without a level
    pd.testing.assert_frame_equal(back[tidy.columns].fillna({"level": ""}), tidy, check_dtype=False)
    assert ",," in paths[0].read_text()  # age rows have no count: an empty field, not "NA"
    for path in paths[1:]:
        assert "SYNTHETIC COHORT" in path.read_text(), path
    assert SYNTHETIC_NOTICE in paths[1].read_text()
    assert r"\begin{tabular}" in paths[2].read_text() and r"$\pm$" in paths[2].read_text()
    page = paths[3].read_text()
    assert "<table>" in page and "<caption>Table 1. Baseline</caption>" in page and "<script" not in page
    assert page.count("<tr>") == table.shape[0] + 1
    real = write_table(table, tmp_path / "real", "Table 1.", synthetic=False, tidy=tidy)
    assert all("SYNTHETIC" not in p.read_text() for p in real)
    assert not pd.read_csv(real[0])["synthetic"].any()


def test_missing_values_print_one_way(tmp_path):
    """NaN, None and a builder's "NA" or "nan" all print as the en dash; the tidy CSV leaves them empty."""
    table = pd.DataFrame(
        {"Estimate": ["0.50", "NA", "nan", None, np.nan], "Medication": ["None"] * 5},
        index=pd.Index(["a", "b", "c", "d", "e"], name="Row"),
    )
    tidy = pd.DataFrame({"Row": list("abcde"), "estimate": [0.5, np.nan, np.nan, np.nan, np.nan]})
    csv, md, tex, page = write_table(table, tmp_path / "t", "T.", synthetic=False, tidy=tidy)
    assert md.read_text().count(f"| {MISSING} |") == 4 and md.read_text().count("| None |") == 5
    assert tex.read_text().count(" & --") == 4
    assert page.read_text().count(f'"number">{MISSING}<') == 4
    assert pd.read_csv(csv)["estimate"].isna().sum() == 4
    assert csv.read_text().count("\n") == 6
    # Without a tidy table the CSV holds the pretty cells, missing ones empty.
    plain = write_table(table, tmp_path / "p", "T.", synthetic=False)[0]
    assert pd.read_csv(plain)["Estimate"].isna().sum() == 4


def test_html_page_wraps_only_columns_of_sentences():
    from htct.tables.write import PROSE_CHARACTERS, table_html

    sentence = "paired patient-level bootstrap of CTNet minus each clinician, percentile 95% CI"
    assert len(sentence) > PROSE_CHARACTERS
    flat = pd.DataFrame(
        {"Claim": ["short", "also short"], "p": ["0.010", "<0.001"], "Test": [sentence, "DeLong"]}
    )
    page = table_html(flat, "Claims", synthetic=False)
    assert '<td class="label prose">' + sentence + "</td>" in page
    assert '<td class="label">short</td>' in page and '<td class="number">0.010</td>' in page
    assert "td.prose { white-space: normal" in page  # the page's own style lets them wrap


def test_html_page_shows_note_columns_under_each_row(tmp_path):
    """Long-text columns named as notes go under their row on the page, across the table, so the table
    fits the report's width; the other formats keep them as columns."""
    from htct.tables.write import table_html

    flat = pd.DataFrame({"Claim": ["a", "b"], "p": ["0.010", "0.200"], "Test": ["DeLong", "McNemar & co"]})
    page = table_html(flat, "Claims", synthetic=False, notes=["Test"])
    assert "<th>Test</th>" not in page and page.count('<tr class="note">') == 2
    assert '<td colspan="2"><strong>Test:</strong> McNemar &amp; co</td>' in page
    with pytest.raises(ValueError, match="not columns"):
        table_html(flat, "Claims", synthetic=False, notes=["Detail"])
    csv, md, _, _ = write_table(flat.set_index("Claim"), tmp_path / "c", "Claims", False, html_notes=["Test"])
    assert "| Test |" in md.read_text() and "Test" in pd.read_csv(csv).columns


def test_markdown_tables_wrap_columns_of_sentences():
    from htct.report.html import WRAP_CHARACTERS, markdown_html

    sentence = "x" * (WRAP_CHARACTERS + 1)
    page = markdown_html(f"| check | detail |\n|---|---|\n| a | {sentence} |\n| b | short |\n")
    assert f'<td class="wrap">{sentence}</td>' in page and '<td class="wrap">short</td>' in page
    assert "<td>a</td>" in page
