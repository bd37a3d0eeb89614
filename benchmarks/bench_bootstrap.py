"""Benchmark: vectorised patient-level bootstrap vs a per-resample scikit-learn loop.

Simulates a test set like the paper's (about 100 scans of 40 patients, 3 models + 8 readers =
11 raters), then

1. times :func:`htct.evaluate.bootstrap_metrics` (2000 resamples, all 8 metrics, all raters);
2. times the classic loop: for each resample, the scan index array of the drawn patients and
   ``accuracy_score``, ``recall_score`` (sensitivity, and specificity as recall of class 0),
   ``precision_score`` (PPV, and NPV as precision of class 0), ``f1_score`` (binary and macro) and
   ``roc_auc_score`` per rater, on the **same draws**;
3. prints both times, the speed-up, and the largest absolute difference per metric (must be
   <= 1e-12; the script exits with status 1 otherwise).

Run: ``python benchmarks/bench_bootstrap.py [--n-bootstrap 2000] [--loop-resamples 200]``.
The loop takes about 0.13 s per resample here (88 scikit-learn calls), so by default it runs the
first 200 resamples only and extrapolates linearly; ``--loop-resamples 2000`` runs all of them.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from htct.evaluate.bootstrap import bootstrap_metrics, bootstrap_patient_draws, patient_codes
from htct.evaluate.metrics import METRICS


def simulate(n_patients: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """A synthetic test set: 1-4 scans per patient, patient-level HT, 3 models and 8 readers."""
    rng = np.random.default_rng(seed)
    scans_per_patient = rng.integers(1, 5, n_patients)
    patient_ids = np.repeat([f"P{i:03d}" for i in range(n_patients)], scans_per_patient)
    patient_ht = rng.random(n_patients) < 0.6
    y_true = np.repeat(patient_ht, scans_per_patient).astype(int)
    n_scans = y_true.size
    scores: dict[str, np.ndarray] = {}
    thresholds: dict[str, float] = {}
    for name, signal in [("ctnet", 1.5), ("wozniak2023", 1.0), ("soundari2022", 0.7)]:
        logit = signal * (2 * y_true - 1) + rng.normal(0, 1.2, n_scans)
        scores[name] = 1 / (1 + np.exp(-logit))
        thresholds[name] = float(rng.uniform(0.35, 0.65))
    for k in range(1, 9):
        # Readers give coarse probabilities (tenths): many ties, as in a reader study.
        logit = 0.8 * (2 * y_true - 1) + rng.normal(0, 1.0, n_scans)
        scores[f"Clinician {k}"] = np.round(1 / (1 + np.exp(-logit)), 1)
        thresholds[f"Clinician {k}"] = 0.5
    return y_true, patient_ids, scores, thresholds


def sklearn_loop(
    y_true: np.ndarray,
    patient_ids: np.ndarray,
    scores: dict[str, np.ndarray],
    thresholds: dict[str, float],
    draws: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-resample scikit-learn metrics on explicit index arrays of the drawn patients' scans."""
    codes, patients = patient_codes(patient_ids)
    scans_of = [np.flatnonzero(codes == p) for p in range(patients.size)]
    raters = list(scores)
    calls = {r: (scores[r] >= thresholds[r]).astype(int) for r in raters}
    out = {m: np.empty((draws.shape[0], len(raters))) for m in METRICS}
    nan = np.nan
    for b, drawn in enumerate(draws):
        idx = np.concatenate([scans_of[p] for p in drawn])
        y = y_true[idx]
        for r, rater in enumerate(raters):
            c = calls[rater][idx]
            out["accuracy"][b, r] = accuracy_score(y, c)
            out["sensitivity"][b, r] = recall_score(y, c, zero_division=nan)
            out["specificity"][b, r] = recall_score(y, c, pos_label=0, zero_division=nan)
            out["ppv"][b, r] = precision_score(y, c, zero_division=nan)
            out["npv"][b, r] = precision_score(y, c, pos_label=0, zero_division=nan)
            out["f1"][b, r] = f1_score(y, c, zero_division=nan)
            out["macro_f1"][b, r] = f1_score(y, c, average="macro", zero_division=nan)
            out["auc"][b, r] = roc_auc_score(y, scores[rater][idx])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-patients", type=int, default=40)
    parser.add_argument("--n-bootstrap", type=int, default=2000)
    parser.add_argument("--loop-resamples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    y_true, patient_ids, scores, thresholds = simulate(args.n_patients, args.seed)
    print(
        f"{y_true.size} scans of {args.n_patients} patients ({y_true.mean():.0%} HT), {len(scores)} raters, "
        f"{args.n_bootstrap} resamples, {len(METRICS)} metrics"
    )

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = bootstrap_metrics(y_true, patient_ids, scores, thresholds, args.n_bootstrap, args.seed)
        times.append(time.perf_counter() - start)
    ours = min(times)
    print(f"vectorised (htct.evaluate): {ours * 1000:8.1f} ms  (best of {args.repeats})")

    draws = bootstrap_patient_draws(np.unique(patient_ids).size, args.n_bootstrap, args.seed)
    n_loop = min(args.loop_resamples, args.n_bootstrap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        reference = sklearn_loop(y_true, patient_ids, scores, thresholds, draws[:n_loop])
        loop = (time.perf_counter() - start) * args.n_bootstrap / n_loop
    note = "" if n_loop == args.n_bootstrap else f"  (extrapolated from {n_loop} resamples)"
    print(f"scikit-learn loop:          {loop * 1000:8.1f} ms{note}")
    print(f"speed-up:                   {loop / ours:8.0f}x")

    worst = 0.0
    for metric in METRICS:
        ours_values = result.replicates[metric][:n_loop]
        same_nan = np.array_equal(np.isnan(ours_values), np.isnan(reference[metric]))
        diff = float(np.nanmax(np.abs(ours_values - reference[metric])))
        exact = np.array_equal(ours_values, reference[metric], equal_nan=True)
        worst = max(worst, diff if same_nan else np.inf)
        print(f"  {metric:12s} max |difference| = {diff:.3g}{'  (bit-identical)' if exact else ''}")
    ok = worst <= 1e-12
    print("numbers identical to 1e-12:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
