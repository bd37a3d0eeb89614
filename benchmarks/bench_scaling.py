"""Sharded conversion and preprocessing on the local one-node SLURM cluster: 1 shard against N.

Generates a synthetic cohort several times the default in a fresh copy of the workflow (locally,
not timed), then for each shard count runs the convert and preprocess stages from an empty
``results/`` through the SLURM executor (profiles/slurm-cpu's settings) and reads every job's
``benchmark:`` TSV. Reports per stage: jobs, wall time of the stage's jobs, seconds per scan (job
seconds / scans of its shard), peak RSS per job (Snakemake's max_rss), and the total wall time of
the run (submission, queueing and the gathers included). With several shards, conversion starts
with the ``index_dicom`` job (every header read once; stage "index"), and each conversion shard's
row says how many of the tree's files it read (``files_read``, from the shard index; one shard
reads them all) and, from its log, that it read no other.

The cluster is tests/slurm/start-cluster.sh's (started here when none is up, with
``--no-accounting``, and stopped at the end; job states then come from squeue). With one 2-core
node, the single-shard run's jobs use both cores and the N-shard runs' jobs one core each, two at a
time: on one node N shards cannot beat one by more than the cores, the point is the per-job time
and memory that a cluster of many nodes divides. On a shared, loaded machine the times are upper
bounds.

Run (root, or a cluster already up):
    python benchmarks/bench_scaling.py --patients 800 --shards 1 4 --work /tmp/bench_scaling
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from htct.testing.workflow import REPO, copy_workflow

SLURM_TESTS = REPO / "tests" / "slurm"
STAGES = {"convert_dicom_shard": "convert", "preprocess_shard": "preprocess"}
SHARD_LOG = re.compile(r"shard (\d+) of (\d+): \d+ patient\(s\), (\d+) of the tree's (\d+) files read")
SLURM_ARGS = [
    "--executor", "slurm", "--jobs", "8", "--latency-wait", "10", "--slurm-init-seconds-before-status-checks", "1",
    "--slurm-status-command", "squeue", "--default-resources", "mem_mb=1500", "runtime=120",
]  # fmt: skip


def cluster_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return result.returncode == 0 and bool({"idle", "mixed", "allocated"} & set(result.stdout.split()))


def snakemake(workdir: Path, *args: str) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "snakemake", *args]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{result.stderr[-4000:]}")
    return time.perf_counter() - started


def files_read(workdir: Path, n_shards: int) -> list[int]:
    """Files each conversion shard read: the shard index's count, checked against the shard's log."""
    tree = workdir / "resources/synthetic/dicom"
    if n_shards == 1:
        return [sum(1 for path in tree.rglob("*") if path.is_file())]
    index = json.loads((workdir / "results/shards/convert/index.json").read_text())
    for shard in range(n_shards):
        logged = SHARD_LOG.search((workdir / f"logs/convert_dicom/shard{shard}.log").read_text())
        if logged is None or int(logged[3]) != index["files_per_shard"][shard]:
            raise SystemExit(f"convert shard {shard}: its log does not say it read the index's files")
    if sum(index["files_per_shard"]) != index["n_files"]:
        raise SystemExit("the shards' files do not add up to the tree's")
    return index["files_per_shard"]


def jobs_of_run(workdir: Path, n_shards: int) -> pd.DataFrame:
    """One row per job of the sharded stages: stage, shard, scans, files read, seconds, s/scan, max RSS (MB)."""
    scans = pd.read_csv(workdir / "results/qc/scans.tsv", sep="\t", dtype={"patient_id": str})
    read = files_read(workdir, n_shards)
    rows = []
    if n_shards > 1:
        bench = pd.read_csv(workdir / "logs/benchmarks/index_dicom.tsv", sep="\t").iloc[-1]
        rows.append({"stage": "index", "shard": -1, "scans": len(scans), "files_read": sum(read),
                     "seconds": float(bench["s"]), "s_per_scan": float(bench["s"]) / max(len(scans), 1),
                     "max_rss_mb": float(bench["max_rss"])})  # fmt: skip
    for rule, stage in STAGES.items():
        for shard in range(n_shards):
            bench = pd.read_csv(workdir / f"logs/benchmarks/{rule}{shard}.tsv", sep="\t").iloc[-1]
            if stage == "convert":
                n = len(pd.read_csv(workdir / f"results/shards/convert/{shard}/scans.tsv", sep="\t"))
            else:
                from htct.shards import shard_of_patients

                shard_of = shard_of_patients(scans["patient_id"], n_shards)
                n = int((scans["patient_id"].map(shard_of) == shard).sum())
            rows.append({"stage": stage, "shard": shard, "scans": n,
                         "files_read": read[shard] if stage == "convert" else None, "seconds": float(bench["s"]),
                         "s_per_scan": float(bench["s"]) / max(n, 1), "max_rss_mb": float(bench["max_rss"])})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=800)
    parser.add_argument("--matrix", type=int, default=128, help="synthetic matrix (config.yaml's default)")
    parser.add_argument("--size", type=int, default=48, help="preprocess.size (config.yaml's default)")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--work", default="/tmp/bench_scaling")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    args = parser.parse_args()

    work = Path(args.work)
    if not (work / "Snakefile").exists():
        copy_workflow(work)
    config = {"synthetic": {"n_patients": args.patients, "matrix": args.matrix, "n_readers": 2},
              "preprocess": {"size": args.size}}  # fmt: skip
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    synth_seconds = snakemake(
        work, "resources/synthetic/clinical.csv", "--cores", "2", "--configfile", "bench.yaml"
    )
    state_dir = None
    if not cluster_is_up():
        state_dir = work / "slurm-state"
        subprocess.run(
            ["bash", str(SLURM_TESTS / "start-cluster.sh"), "--no-accounting", str(state_dir)], check=True
        )
    results = {"patients": args.patients, "matrix": args.matrix, "size": args.size, "synth_seconds": synth_seconds,
               "runs": {}}  # fmt: skip
    try:
        for n_shards in args.shards:
            for folder in ("results", "logs"):
                shutil.rmtree(work / folder, ignore_errors=True)
            (work / "shards.yaml").write_text(
                yaml.safe_dump({"shards": {"convert": n_shards, "preprocess": n_shards}})
            )
            threads = 2 if n_shards == 1 else 1
            total = snakemake(
                work, "results/arrays/volumes.npy", *SLURM_ARGS, "--set-threads",
                f"convert_dicom_shard={threads}", f"preprocess_shard={threads}",
                "--configfile", "bench.yaml", "shards.yaml",
            )  # fmt: skip
            jobs = jobs_of_run(work, n_shards)
            n_scans = len(pd.read_csv(work / "results/qc/scans.tsv", sep="\t"))
            summary = {
                stage: {
                    "jobs": len(group),
                    "threads_per_job": 2 if stage == "index" else threads,  # index_dicom: the rule's 2
                    "files_read_max": group["files_read"].max(),
                    "job_seconds_sum": group["seconds"].sum(),
                    "job_seconds_max": group["seconds"].max(),
                    "s_per_scan": group["seconds"].sum() / n_scans,
                    "max_rss_mb_per_job": group["max_rss_mb"].max(),
                }  # fmt: skip
                for stage, group in jobs.groupby("stage")
            }
            results["runs"][n_shards] = {"scans": n_scans, "total_seconds": total, "stages": summary,
                                         "jobs": jobs.to_dict("records")}  # fmt: skip
            print(
                f"{n_shards} shard(s): {n_scans} scans, {total:.0f} s in all", json.dumps(summary, indent=1)
            )
    finally:
        if state_dir is not None:
            subprocess.run(["bash", str(SLURM_TESTS / "stop-cluster.sh"), str(state_dir)], check=False)
    print(json.dumps(results, indent=2, default=float))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
