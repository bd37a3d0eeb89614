"""The clinical-only model on a large sampled synthetic cohort (tables only, no images), beside the
known probabilities: how much of the risk the chart alone carries.

Samples ``sample_cohort(n, seed)`` (age, sex, medication, labels, ``p_true``, ``p_image_scan``),
splits the patients at random (test 10%, validation 13.5%, as the default split), fits
:func:`htct.clinical.fit_clinical` on the training patients and prints its coefficients and the
test AUC over scans beside ``p_true`` (image + clinical), ``p_image_scan`` (image only) and the
risk model's own clinical term (the clinical model's ceiling). Synthetic numbers, not the paper's.

Usage: python benchmarks/bench_clinical.py [--patients 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from htct.clinical import fit_clinical  # noqa: E402
from htct.synth import sample_cohort  # noqa: E402
from htct.synth.risk import clinical_log_odds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    cohort = sample_cohort(args.patients, seed=args.seed)
    clinical = cohort.clinical
    u = np.random.default_rng(0).random(len(clinical))
    part = np.where(u < 0.1, "test", np.where(u < 0.235, "val", "train"))
    split = pd.DataFrame({"patient_id": clinical["patient_id"], "part": part, "fold": -1})
    model, predictions = fit_clinical(clinical, split, cohort.scans[["scan_id", "patient_id"]])
    print("clinical model (log-odds):\n" + model.coefficients.round(3).to_string())
    test = predictions[predictions["split"] == "test"]
    patients = cohort.patients.set_index("patient_id")
    p_image_scan = cohort.scans.set_index("scan_id")["p_image_scan"]
    clinical_term = clinical_log_odds(
        test["patient_id"].map(patients["age"]).to_numpy(),
        test["patient_id"].map(patients["medication"]).to_numpy(),
    )
    scores = {
        "clinical model": test["p_ht"],
        "risk model's clinical term (the clinical model's ceiling)": clinical_term,
        "p_image_scan (image only)": test["scan_id"].map(p_image_scan),
        "p_true (image + clinical)": test["patient_id"].map(patients["p_true"]),
    }
    print(f"test: {test['patient_id'].nunique()} patients, {len(test)} scans; AUC over scans:")
    for name, score in scores.items():
        print(f"  {name}: {roc_auc_score(test['y_true'], score):.3f}")
    print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
