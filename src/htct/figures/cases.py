"""Choice of the test cases shown in figure 3."""

from __future__ import annotations

import pandas as pd


def choose_cases(
    test: pd.DataFrame, truth: pd.DataFrame | None, n_cases: int = 3
) -> list[tuple[str, int, None]]:
    """Pick the test scans figure 3 shows: a visible lesion, a barely visible one, and one more.

    With the synthetic cohort's truth (columns scan_id, lesion_volume_ml, visible) the largest
    visible lesion and the largest barely visible lesion are chosen, then the largest remaining
    lesion; without truth, the first test scans with HT and without. The slice is left to
    `fig3_attention` (largest lesion area).

    Args:
        test: test scans with columns row, scan_id, label.
        truth: per-scan truth table or None.
        n_cases: how many cases.

    Returns:
        (title, row, None) per case.
    """
    cases: list[tuple[str, int, None]] = []
    if truth is not None and {"visible", "lesion_volume_ml"} <= set(truth.columns):
        known = test.merge(truth[["scan_id", "visible", "lesion_volume_ml"]], on="scan_id")
        known = known.sort_values(["lesion_volume_ml", "row"], ascending=[False, True])
        lesions = known[known["lesion_volume_ml"] > 0]
        visible = lesions[lesions["visible"].astype(str).str.lower() == "true"]
        hidden = lesions[lesions["visible"].astype(str).str.lower() != "true"]
        for title, rows in (("Visible infarct", visible), ("Barely visible infarct", hidden)):
            if len(rows):
                cases.append((title, int(rows["row"].iloc[0]), None))
        for row in lesions["row"]:
            if len(cases) >= n_cases:
                break
            if int(row) not in {case[1] for case in cases}:
                cases.append(("Infarct", int(row), None))
    for title, label in (("HT", 1), ("No HT", 0)):
        for row in test.loc[test["label"] == label, "row"]:
            if len(cases) >= n_cases:
                break
            if int(row) not in {case[1] for case in cases}:
                cases.append((title, int(row), None))
                break
    return cases[:n_cases]
