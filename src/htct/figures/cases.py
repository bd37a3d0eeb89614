"""Choice of the test cases shown in figure 3: the paper's two, a visible and a not yet visible lesion."""

from __future__ import annotations

import pandas as pd


def choose_cases(test: pd.DataFrame, truth: pd.DataFrame | None) -> list[tuple[str, int, None]]:
    """Pick figure 3's test scans without looking at any attribution map.

    With the synthetic cohort's truth (columns scan_id, lesion_volume_ml, visible): (a) a typical
    visible infarct, the visible one of median volume (not the largest, which would flatter any
    map), and (b) a not yet visible infarct, the largest (so that its outline can be seen). Without
    truth (a real cohort): the first test scan with HT and the first without. The slice is left to
    the figure (largest lesion area).

    Args:
        test: test scans with columns row, scan_id, label.
        truth: per-scan truth table or None.

    Returns:
        (title, row, None) per case, at most two.
    """
    cases: list[tuple[str, int, None]] = []
    if truth is not None and {"visible", "lesion_volume_ml"} <= set(truth.columns):
        known = test[["row", "scan_id"]].merge(
            truth[["scan_id", "visible", "lesion_volume_ml"]], on="scan_id"
        )
        known = known[known["lesion_volume_ml"] > 0].sort_values(["lesion_volume_ml", "row"])
        visible = known[known["visible"].astype(str).str.lower() == "true"]
        hidden = known[known["visible"].astype(str).str.lower() != "true"]
        if len(visible):
            cases.append(("Visible infarct", int(visible["row"].iloc[(len(visible) - 1) // 2]), None))
        if len(hidden):
            cases.append(("Infarct not yet visible", int(hidden["row"].iloc[-1]), None))
    for title, label in (("HT", 1), ("No HT", 0)):
        if len(cases) >= 2:
            break
        for row in test.loc[test["label"] == label, "row"]:
            if int(row) not in {case[1] for case in cases}:
                cases.append((title, int(row), None))
                break
    return cases[:2]
