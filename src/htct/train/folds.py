"""k-fold training: the folds' predictions merged into one table and one pooled threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from htct.evaluate.metrics import auc
from htct.evaluate.thresholds import youden_threshold


def merge_fold_predictions(
    fold_predictions: list[str | Path], out_tsv: str | Path, threshold_json: str | Path | None = None
) -> pd.DataFrame:
    """Merge the predictions of a k-fold training into one table.

    Validation rows are the out-of-fold predictions (every non-test scan once, by the model that did
    not train on it); test rows average p_ht over the fold models (an ensemble). The threshold is
    re-chosen (maximal Youden's J) on the pooled out-of-fold predictions, never on the test scans.

    Args:
        fold_predictions: the folds' predictions.tsv files.
        out_tsv: merged table (patient_id, scan_id, split, y_true, p_ht, threshold).
        threshold_json: where to write the pooled threshold (optional).

    Returns:
        The merged table.
    """
    folds = [
        pd.read_csv(path, sep="\t", dtype={"patient_id": str, "scan_id": str}) for path in fold_predictions
    ]
    val = pd.concat([f[f["split"] == "val"] for f in folds], ignore_index=True)
    if val["scan_id"].duplicated().any():
        raise ValueError("a scan is in the validation part of two folds: the folds overlap")
    test = (
        pd.concat([f[f["split"] == "test"] for f in folds])
        .groupby(["patient_id", "scan_id", "split", "y_true"], as_index=False, sort=True)["p_ht"]
        .mean()
    )
    threshold = youden_threshold(val["y_true"].to_numpy(), val["p_ht"].to_numpy())
    threshold.update(
        method="youden_j_on_pooled_out_of_fold_validation",
        val_auc=auc(val["y_true"], val["p_ht"]),
        n_folds=len(folds),
    )
    merged = pd.concat([val.drop(columns="threshold"), test], ignore_index=True)
    merged["threshold"] = threshold["threshold"]
    merged = merged[["patient_id", "scan_id", "split", "y_true", "p_ht", "threshold"]]
    merged.to_csv(out_tsv, sep="\t", index=False, float_format="%.6g")
    if threshold_json:
        Path(threshold_json).write_text(json.dumps(threshold, indent=2) + "\n")
    return merged
