"""Choice of the test cases shown in figure 3: the paper's two (a visible and a not yet visible
lesion) when the run knows its lesions, else the test scans of highest and lowest predicted risk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

HIGHEST_RISK = "Highest predicted risk"
LOWEST_RISK = "Lowest predicted risk"


def choose_cases(
    test: pd.DataFrame, truth: pd.DataFrame | None, p_ht: Mapping[int, float] | None = None
) -> list[tuple[str, int, None]]:
    """Pick figure 3's test scans without looking at any attribution map.

    With the synthetic cohort's truth (columns scan_id, lesion_volume_ml, visible): (a) a typical
    visible infarct, the visible one of median volume (not the largest, which would flatter any
    map), and (b) a not yet visible infarct, the largest (so that its outline can be seen). Without
    truth (an own cohort) the run knows no lesion, only its predictions: the test scans with the
    highest and the lowest predicted HT risk (`p_ht`), titled with that risk and the scan's
    outcome; without predictions either, the first test scan with HT and the first without. The
    slice is left to the figure (largest lesion area, else the map's peak).

    Args:
        test: test scans with columns row, scan_id, label.
        truth: per-scan truth table or None.
        p_ht: predicted HT probability per row of `test` (used only without truth).

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
    elif p_ht is not None and len(test):
        ranked = test.assign(p_ht=[float(p_ht[int(row)]) for row in test["row"]])
        ranked = ranked.sort_values(["p_ht", "row"], ascending=[False, True], kind="stable")
        for title, scan in ((HIGHEST_RISK, ranked.iloc[0]), (LOWEST_RISK, ranked.iloc[-1])):
            if int(scan["row"]) not in {case[1] for case in cases}:
                outcome = "HT" if int(scan["label"]) == 1 else "no HT"
                cases.append((f"{title}: p(HT) {scan['p_ht']:.2f}, {outcome}", int(scan["row"]), None))
        return cases
    for title, label in (("HT", 1), ("No HT", 0)):
        if len(cases) >= 2:
            break
        for row in test.loc[test["label"] == label, "row"]:
            if int(row) not in {case[1] for case in cases}:
                cases.append((title, int(row), None))
                break
    return cases[:2]


def chosen_by_risk(titles: Sequence[str]) -> bool:
    """Whether figure 3's cases (their titles) were chosen by predicted risk (:func:`choose_cases`)."""
    return any(str(title).startswith((HIGHEST_RISK, LOWEST_RISK)) for title in titles)
