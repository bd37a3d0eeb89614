"""The attention table: where CTNet's Grad-CAM mass falls, with and without skull stripping."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from htct.evaluate import auc


def attention_table(
    summaries: Mapping[str, pd.DataFrame], predictions: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """Mean attention shares over the test scans, one row per model variant.

    Args:
        summaries: variant label -> `htct.figures.attention.attention_summary` table (per scan
            rows plus a "mean" row).
        predictions: variant label -> that model's prediction table (for its test AUC).

    Returns:
        Rows per variant; columns: test scans, brain %, skull/outside %, lesion %, lesion volume %
        (the lesion share a uniform map would get: chance level), test AUC.
    """
    rows = {}
    for label, summary in summaries.items():
        per_scan = summary[summary["scan_id"] != "mean"]
        test = predictions[label].query("split == 'test'")
        rows[label] = {
            "Test scans": f"{len(per_scan)}",
            "Brain, %": f"{100 * per_scan['brain'].mean():.1f}",
            "Skull and outside, %": f"{100 * per_scan['skull_or_outside'].mean():.1f}",
            "Lesion, %": _percent(per_scan["lesion"].mean()),
            "Lesion volume, % (chance)": _percent(per_scan["lesion_volume_share"].mean()),
            "Test AUC": f"{auc(test['y_true'], test['p_ht']):.3f}",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "Model"
    return table


def _percent(value: float) -> str:
    return "NA" if value is None or np.isnan(value) else f"{100 * value:.1f}"
