"""Table 1 numbers equal a direct pandas count; the writers emit csv/md/tex with the notice."""

import numpy as np
import pandas as pd

from htct import SYNTHETIC_NOTICE
from htct.split import make_split
from htct.tables import table1, write_table

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


def test_write_table_formats(tmp_path):
    clinical = _clinical(40)
    scans = pd.DataFrame({"scan_id": clinical["patient_id"] + "_scan1", "patient_id": clinical["patient_id"]})
    table = table1(clinical, make_split(clinical, scans, seed=2, test_fraction=0.2))
    paths = write_table(table, tmp_path / "table1", "Table 1. Baseline", synthetic=True)
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    back = pd.read_csv(paths[0], comment="#")
    assert back.shape == (table.shape[0], table.shape[1] + 2)
    assert list(back.iloc[:, 2]) == list(table.iloc[:, 0])
    for path in paths:
        assert "SYNTHETIC COHORT" in path.read_text()
    assert SYNTHETIC_NOTICE in paths[1].read_text()
    assert r"\begin{tabular}" in paths[2].read_text() and r"$\pm$" in paths[2].read_text()
    real = write_table(table, tmp_path / "real", "Table 1.", synthetic=False)
    assert all("SYNTHETIC" not in p.read_text() for p in real)
