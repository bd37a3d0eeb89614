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
    "none": "No medication",  # not "None": read_csv would take it for a missing value
    "not_available": "Not available",
}
SEX_LABELS = {"M": "Male", "F": "Female"}


TIDY_COLUMNS = ["characteristic", "level", "group", "group_n", "count", "percent", "mean", "sd"]


def _rows(group: str, patients: pd.DataFrame) -> list[dict[str, object]]:
    n = len(patients)

    def count(characteristic: str, level: str, mask: pd.Series) -> dict[str, object]:
        k = int(mask.sum())
        return {
            "characteristic": characteristic,
            "level": level,
            "count": k,
            "percent": 100 * k / n if n else None,
        }

    rows: list[dict[str, object]] = [{"characteristic": "Patients, n", "level": "", "count": n}]
    rows.append(
        {
            "characteristic": "Age, years, mean ± SD",
            "level": "",
            "mean": patients["age"].mean(),
            "sd": patients["age"].std(ddof=1),
        }
    )
    rows.append(count("Haemorrhagic transformation, n (%)", "", patients["label"] == 1))
    rows += [count("Sex, n (%)", label, patients["sex"] == code) for code, label in SEX_LABELS.items()]
    rows += [
        count("Medication, n (%)", MEDICATION_LABELS[code], patients["medication"] == code)
        for code in MEDICATIONS
    ]
    return [{"group": group, "group_n": n} | row for row in rows]


def table1_tidy(clinical: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Baseline characteristics for Total / Training / Test as numbers, one row per (characteristic,
    level, group).

    Training is every non-test patient (the training and validation parts together), as in the
    paper's 9:1 split. Only patients in the split (those with at least one kept scan) are counted.

    Args:
        clinical: the validated clinical sheet (patient_id, label, age, sex, medication).
        split: the patient split (patient_id, part).

    Returns:
        Columns characteristic, level, group (Total | Training | Test), group_n (patients in the
        group), count and percent (counts), mean and sd (age); the cells a row does not have are
        missing.
    """
    groups = _groups(clinical, split)
    rows = [row for name, group in groups.items() for row in _rows(name, group)]
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def _cell(row: pd.Series) -> str:
    if pd.notna(row["mean"]):
        return f"{row['mean']:.1f} ± {row['sd']:.1f}"
    if pd.notna(row["percent"]):
        return f"{int(row['count'])} ({row['percent']:.1f})"
    return f"{int(row['count'])}"


def table1_pretty(tidy: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout of :func:`table1_tidy`: rows (characteristic, level), one column per group
    headed with its size ("Test (n=12)"), cells "66.6 ± 12.0", "120 (68.2)" or a count."""
    cells = tidy.assign(cell=tidy.apply(_cell, axis=1))
    columns = {
        group: f"{group} (n={int(rows['group_n'].iloc[0])})"
        for group, rows in cells.groupby("group", sort=False)
    }
    table = cells.pivot(index=["characteristic", "level"], columns="group", values="cell")
    order = pd.MultiIndex.from_frame(cells[["characteristic", "level"]].drop_duplicates())
    table = table.reindex(order)[list(columns)].rename(columns=columns)
    table.columns.name = None
    return table


def table1(clinical: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Baseline characteristics for Total / Training / Test, in the paper's layout.

    Args:
        clinical: the validated clinical sheet (patient_id, label, age, sex, medication).
        split: the patient split (patient_id, part).

    Returns:
        A table indexed by (characteristic, level) with columns "Total (n=..)", "Training (n=..)",
        "Test (n=..)", cells as text ("66.6 ± 12.0", "120 (68.2)"): :func:`table1_pretty` of
        :func:`table1_tidy`.
    """
    return table1_pretty(table1_tidy(clinical, split))


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
