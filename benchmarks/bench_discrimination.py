"""Test AUC of ctnet, wozniak2023 and soundari2022 next to the oracle AUC on the same test scans.

The oracle is the synthetic cohort's image-only true probability of each scan (truth/scans.tsv,
`p_image_scan`): the best any model that sees only the CT can do. Runs the workflow up to the
predictions on `benchmarks/discrimination.yaml` in a work folder (default benchmarks/results/
discrimination) and prints a table with DeLong 95% CIs and the paired DeLong test against the
oracle and against ctnet. Goal (issue "CTNet and the two baselines"): ctnet within 0.03 of the
oracle and above both baselines.

Usage: python benchmarks/bench_discrimination.py [--workdir DIR] [--configfile FILE] [--cores N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from htct.evaluate import delong_ci, delong_test  # noqa: E402
from htct.evaluate.metrics import auc as auc_score  # noqa: E402

MODELS = ("ctnet", "wozniak2023", "soundari2022")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "results" / "discrimination")
    parser.add_argument("--configfile", type=Path, default=REPO / "benchmarks" / "discrimination.yaml")
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml", "rules", "scripts", "schemas", "envs", "report", "src"):
        source, target = REPO / name, args.workdir / name
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    targets = [f"results/predictions/{model}.tsv" for model in MODELS]
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            *targets,  # before --configfile, which takes several values
            "--cores",
            str(args.cores),
            "--configfile",
            str(args.configfile.resolve()),
        ],
        cwd=args.workdir,
        check=True,
    )
    elapsed = time.perf_counter() - start
    truth = pd.read_csv(
        args.workdir / "resources/synthetic/truth/scans.tsv", sep="\t", dtype={"scan_id": str}
    )
    rows = []
    test = val_scans = None
    scores = {}
    val_auc = {}
    for model in MODELS:
        predictions = pd.read_csv(
            args.workdir / f"results/predictions/{model}.tsv", sep="\t", dtype={"scan_id": str}
        )
        predictions = predictions.merge(truth[["scan_id", "p_image_scan"]], on="scan_id")
        val = predictions[predictions["split"] == "val"]
        val_scans = list(val["scan_id"]) if val_scans is None else val_scans
        assert list(val["scan_id"]) == val_scans, "models disagree on the validation scans"
        val_auc[model] = auc_score(val["y_true"], val["p_ht"]) if len(val) else float("nan")
        predictions = predictions[predictions["split"] == "test"]
        test = predictions if test is None else test
        assert list(predictions["scan_id"]) == list(test["scan_id"]), "models disagree on the test scans"
        y, oracle = predictions["y_true"].to_numpy(), predictions["p_image_scan"].to_numpy()
        scores[model] = predictions["p_ht"].to_numpy()
        auc, low, high = delong_ci(y, scores[model])
        _, p_oracle = delong_test(y, scores[model], oracle)
        _, p_ctnet = (
            delong_test(y, scores[model], scores["ctnet"]) if model != "ctnet" else (0.0, float("nan"))
        )
        rows.append((model, auc, low, high, p_oracle, p_ctnet))
    # The validation scans are every model's (asserted above): the oracle's AUC on them, once.
    val_auc["oracle (p_image_scan)"] = (
        auc_score(val["y_true"], val["p_image_scan"]) if len(val) else float("nan")
    )
    y, oracle = test["y_true"].to_numpy(), test["p_image_scan"].to_numpy()
    auc, low, high = delong_ci(y, oracle)
    p_ctnet_vs_oracle = rows[MODELS.index("ctnet")][4]  # the paired test is symmetric
    rows.append(("oracle (p_image_scan)", auc, low, high, float("nan"), p_ctnet_vs_oracle))
    table = pd.DataFrame(
        rows, columns=["model", "test AUC", "low", "high", "p vs oracle (DeLong)", "p vs ctnet (DeLong)"]
    )
    oracle_auc = table["test AUC"].iloc[-1]
    table["AUC - oracle"] = table["test AUC"] - oracle_auc
    table["val AUC"] = table["model"].map(val_auc)
    print(
        f"SYNTHETIC COHORT benchmark: {len(test)} test scans ({int(y.sum())} HT), workflow {elapsed / 60:.1f} min"
    )
    print(table.to_markdown(index=False, floatfmt=".3f") if _has_tabulate() else table.to_string(index=False))
    ctnet = table.set_index("model").loc["ctnet", "test AUC"]
    baselines = table.set_index("model").loc[["wozniak2023", "soundari2022"], "test AUC"]
    print(
        f"ctnet within 0.03 of the oracle: {oracle_auc - ctnet <= 0.03}; above both baselines: {bool((ctnet > baselines).all())}"
    )


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
