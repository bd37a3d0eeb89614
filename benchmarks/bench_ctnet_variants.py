"""Train CTNet variants on the arrays and split of a discrimination-benchmark run; AUC next to the oracle.

Run after `bench_discrimination.py` (it leaves the synthetic cohort, arrays and split in its work
folder). Each variant is a JSON object of config.yaml `train:` overrides, plus optionally `arrays`
(a folder with volumes.npy and index.tsv, e.g. the same scans preprocessed at another size with
`htct.preprocess.build_arrays`) and `k_folds` (a fold ensemble, as `split.k_folds` in the
workflow, on the same test patients). Prints and appends to `--out` one row per variant: validation and
test AUC, the oracle's (`p_image_scan`) on the same scans, and the correlation of the model's logit
with the oracle's. Choose between variants on the validation columns, not the test ones.

Usage:
    python benchmarks/bench_ctnet_variants.py --workdir benchmarks/results/discrimination \\
        base='{}' two_windows='{"model_options": {"ctnet": {"input_window": [[0.125, 0.625], [0, 1]]}}}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sklearn.metrics import roc_auc_score  # noqa: E402

from htct.attribution.counterfactual import counterfactual_deltas, summarise  # noqa: E402
from htct.split import make_split  # noqa: E402
from htct.train import merge_fold_predictions, train_model  # noqa: E402

CONFIGFILE = REPO / "benchmarks" / "discrimination.yaml"


def _logit(p: pd.Series) -> np.ndarray:
    p = np.clip(p.to_numpy(dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def kfold_split(workdir: Path, k_folds: int, out_tsv: Path, configfile: Path) -> Path:
    """The benchmark's split redrawn with `k_folds` folds over its non-test patients (same test patients).

    `configfile` is the configuration the work folder was run with (its `split:` seed and test
    fraction); a mismatch is caught: the test patients must be those of the work folder's split.
    """
    ids = {"scan_id": str, "patient_id": str}
    split_cfg = yaml.safe_load(configfile.read_text())["split"]
    single = pd.read_csv(workdir / "results/split/split.tsv", sep="\t", dtype=ids)
    clinical = pd.read_csv(workdir / "resources/synthetic/clinical.csv", dtype=ids)
    scans = pd.read_csv(workdir / "results/arrays/index.tsv", sep="\t", dtype=ids)
    split = make_split(
        clinical, scans, seed=split_cfg["seed"], test_fraction=split_cfg["test_fraction"], k_folds=k_folds
    )
    test = set(split.loc[split["part"] == "test", "patient_id"])
    if test != set(single.loc[single["part"] == "test", "patient_id"]):
        raise ValueError("the k-fold split has other test patients than the benchmark's split")
    out_tsv.parent.mkdir(parents=True, exist_ok=True)
    split.to_csv(out_tsv, sep="\t", index=False)
    return out_tsv


def counterfactual_columns(workdir: Path, model_dir: Path, arrays: Path, k_folds: int) -> dict:
    """Spearman of the model's logit change with the oracle's, and its mean |change|, per image factor,
    on the work folder's counterfactual test scans (results/counterfactuals/, rules/counterfactual.smk;
    full-head arrays of the work folder only). Empty when they are absent or not applicable."""
    root = workdir / "results" / "counterfactuals"
    if k_folds >= 2 or arrays != workdir / "results" / "arrays" or not root.is_dir():
        return {}
    factors = [
        f
        for f in ("infarct", "hyperdense_artery", "leukoaraiosis")
        if (root / f / "full_head" / "index.tsv").is_file()
    ]
    variant = {"model": "ctnet", "input": "full_head", "model_dir": str(model_dir), "arrays": str(arrays)}
    summary = summarise(counterfactual_deltas([variant], factors, root), n_bootstrap=200).set_index("factor")
    columns = {}
    for factor in factors:
        columns[f"cf_{factor}_spearman"] = summary.loc[factor, "spearman"]
        columns[f"cf_{factor}_mean_abs"] = summary.loc[factor, "mean_abs_delta"]
    return columns


def run_variant(
    workdir: Path, name: str, overrides: dict, out_root: Path, configfile: Path = CONFIGFILE
) -> dict:
    """Train ctnet with `overrides` on the benchmark's split; AUCs of the validation and test scans.

    `k_folds` >= 2 in `overrides` trains one model per fold of the non-test patients (same test
    patients) and merges them as the workflow does: validation = pooled out-of-fold predictions,
    test = the fold ensemble (mean probability).
    """
    train_cfg = dict(overrides)
    arrays = Path(train_cfg.pop("arrays", workdir / "results" / "arrays"))
    k_folds = int(train_cfg.pop("k_folds", 0))
    started = time.perf_counter()
    common = (arrays / "volumes.npy", arrays / "index.tsv")
    train_cfg = {"threads": 2, **train_cfg}
    if k_folds >= 2:
        split_tsv = kfold_split(workdir, k_folds, out_root / name / "split.tsv", configfile)
        fold_predictions = []
        for fold in range(k_folds):
            fold_dir = out_root / name / f"fold{fold}"
            summary = train_model("ctnet", *common, split_tsv, fold_dir, fold=fold, **train_cfg)
            fold_predictions.append(fold_dir / "predictions.tsv")
        merge_fold_predictions(fold_predictions, out_root / name / "predictions.tsv")
    else:
        split_tsv = workdir / "results" / "split" / "split.tsv"
        summary = train_model("ctnet", *common, split_tsv, out_root / name, **train_cfg)
    minutes = (time.perf_counter() - started) / 60
    ids = {"scan_id": str, "patient_id": str}
    predictions = pd.read_csv(out_root / name / "predictions.tsv", sep="\t", dtype=ids)
    truth = pd.read_csv(workdir / "resources/synthetic/truth/scans.tsv", sep="\t", dtype=ids)
    predictions = predictions.merge(truth[["scan_id", "p_image_scan"]], on="scan_id", validate="1:1")
    row = {"variant": name, "overrides": json.dumps(overrides), "minutes": round(minutes, 1)}
    row["best_epoch"] = summary.get("best_epoch")  # of the last fold with k_folds
    row.update(counterfactual_columns(workdir, out_root / name, arrays, k_folds))
    for part in ("val", "test"):
        scans = predictions[predictions["split"] == part]
        row[f"{part}_auc"] = roc_auc_score(scans["y_true"], scans["p_ht"])
        row[f"{part}_oracle_auc"] = roc_auc_score(scans["y_true"], scans["p_image_scan"])
        row[f"{part}_r_logit_oracle"] = float(
            np.corrcoef(_logit(scans["p_ht"]), _logit(scans["p_image_scan"]))[0, 1]
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "results" / "discrimination")
    parser.add_argument(
        "--configfile", type=Path, default=CONFIGFILE, help="the configuration the work folder was run with"
    )
    parser.add_argument("--out", type=Path, default=None, help="TSV to append rows to")
    parser.add_argument("variants", nargs="+", help="NAME=JSON overrides of config.yaml train:")
    args = parser.parse_args()
    out_root = args.workdir / "variants"
    rows = []
    for spec in args.variants:
        name, _, overrides = spec.partition("=")
        rows.append(run_variant(args.workdir, name, json.loads(overrides or "{}"), out_root, args.configfile))
        table = pd.DataFrame(rows)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
    out = args.out or out_root / "variants.tsv"
    table.to_csv(out, sep="\t", index=False, mode="a", header=not out.exists(), float_format="%.4f")


if __name__ == "__main__":
    main()
