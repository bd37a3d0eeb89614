"""Table 1: baseline characteristics of the total cohort and of the training and test patients.

Written with pandas rather than tableone: tableone 0.9.6 reserves "Test" as a group name and
formats continuous variables as "mean (SD)", while the paper's layout is "mean ± SD" with patient
counts in the header; the table is three group-bys.
"""

from __future__ import annotations

import pandas as pd

from htct.sheets import MEDICATIONS

MEDICATION_LABELS = {
    "antiplatelet": "Antiplatelet",
    "anticoagulant": "Anticoagulant",
    "thrombolytic": "Thrombolytic",
    "none": "None",
    "not_available": "Not available",
}
SEX_LABELS = {"M": "Male", "F": "Female"}


def _column(patients: pd.DataFrame) -> dict[tuple[str, str], str]:
    n = len(patients)
    cells = {("Patients, n", ""): f"{n}"}
    cells[("Age, years, mean ± SD", "")] = f"{patients['age'].mean():.1f} ± {patients['age'].std(ddof=1):.1f}"
    ht = int((patients["label"] == 1).sum())
    cells[("Haemorrhagic transformation, n (%)", "")] = f"{ht} ({100 * ht / n:.1f})"
    for code, label in SEX_LABELS.items():
        count = int((patients["sex"] == code).sum())
        cells[("Sex, n (%)", label)] = f"{count} ({100 * count / n:.1f})"
    for code in MEDICATIONS:
        count = int((patients["medication"] == code).sum())
        cells[("Medication, n (%)", MEDICATION_LABELS[code])] = f"{count} ({100 * count / n:.1f})"
    return cells


def table1(clinical: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Baseline characteristics for Total / Training / Test, in the paper's layout.

    Training is every non-test patient (the training and validation parts together), as in the
    paper's 9:1 split. Only patients in the split (those with at least one kept scan) are counted.

    Args:
        clinical: the validated clinical sheet (patient_id, label, age, sex, medication).
        split: the patient split (patient_id, part).

    Returns:
        A table indexed by (characteristic, level) with columns "Total (n=..)", "Training (n=..)",
        "Test (n=..)", cells as text ("66.6 ± 12.0", "120 (68.2)").
    """
    groups = _groups(clinical, split)
    table = pd.DataFrame({f"{name} (n={len(group)})": _column(group) for name, group in groups.items()})
    table.index = pd.MultiIndex.from_tuples(table.index, names=["characteristic", "level"])
    return table


def _groups(clinical: pd.DataFrame, split: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Patients of the split (Total) and its Training (train + val) and Test parts."""
    patients = clinical.merge(split[["patient_id", "part"]], on="patient_id", how="inner", validate="1:1")
    return {
        "Total": patients,
        "Training": patients[patients["part"] != "test"],
        "Test": patients[patients["part"] == "test"],
    }


def table1_values(clinical: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as numbers: the same patients and groups as :func:`table1`, unrounded.

    Args:
        clinical: the validated clinical sheet.
        split: the patient split.

    Returns:
        Columns ``group`` (total / training / test), ``variable`` (age, sex, medication), ``level``
        (sex or medication code, "" for age), ``n`` (patients in the group), ``value`` (mean age, or
        percent of the group) and ``sd`` (age only).
    """
    rows = []
    for name, patients in _groups(clinical, split).items():
        group, n = name.lower(), len(patients)
        rows.append((group, "age", "", n, patients["age"].mean(), patients["age"].std(ddof=1)))
        for variable, levels in (("sex", SEX_LABELS), ("medication", MEDICATIONS)):
            for level in levels:
                share = 100 * (patients[variable] == level).mean() if n else float("nan")
                rows.append((group, variable, level, n, share, float("nan")))
    return pd.DataFrame(rows, columns=["group", "variable", "level", "n", "value", "sd"])
