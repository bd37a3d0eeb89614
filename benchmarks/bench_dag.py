"""Wall time of the whole default DAG from an empty results/, with the per-rule breakdown.

Copies the workflow into a fresh work folder (no results/, no resources/synthetic/), runs
`snakemake --cores N` with the given config files on top of config.yaml, and reads every job's
`benchmark:` TSV (logs/benchmarks/*.tsv: wall seconds, CPU seconds, peak memory). Prints the total
wall time, the per-rule table and the critical-path view (rules that ran alone vs in parallel), and
writes it all to --out as Markdown.

With `--reuse`, runs in an existing work folder on top of what it holds (e.g. the named targets
`repeats image_split` after a default run), timing only the added jobs.

Run: python benchmarks/bench_dag.py [--cores 2] [--workdir /tmp/dag] [--configfile config/quick.yaml]
     python benchmarks/bench_dag.py --workdir /tmp/dag --reuse --targets repeats image_split
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

from htct.testing.workflow import copy_workflow  # noqa: E402


def benchmark_table(workdir: Path) -> pd.DataFrame:
    """One row per job from logs/benchmarks/**/*.tsv (repeats/ included): job, wall s, CPU s, max RSS MB."""
    rows = []
    folder = workdir / "logs" / "benchmarks"
    for path in sorted(folder.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        if table.empty:
            continue
        row = table.iloc[-1]
        rows.append(
            {
                "job": path.relative_to(folder).with_suffix("").as_posix(),
                "wall_s": float(row["s"]),
                "cpu_s": float(row.get("cpu_time", float("nan"))),
                "max_rss_mb": float(row.get("max_rss", float("nan"))),
            }
        )
    return pd.DataFrame(rows).sort_values("wall_s", ascending=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/htct_dag"))
    parser.add_argument("--configfile", nargs="*", default=[], help="config files on top of config.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dag.md")
    parser.add_argument("--targets", nargs="*", default=[], help="snakemake targets (default: all)")
    parser.add_argument(
        "--reuse", action="store_true", help="run in the existing --workdir; time and list only new jobs"
    )
    args = parser.parse_args()
    if args.reuse:
        if not (args.workdir / "Snakefile").is_file():
            sys.exit(f"--reuse: {args.workdir} holds no workflow; run once without --reuse first")
        before = (
            set(benchmark_table(args.workdir)["job"])
            if (args.workdir / "logs/benchmarks").is_dir()
            else set()
        )
    else:
        before = set()
        if args.workdir.exists():
            shutil.rmtree(args.workdir)
        args.workdir.mkdir(parents=True)
        copy_workflow(args.workdir)
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), *args.targets]
    if args.configfile:
        command += ["--configfile", *[str(Path(c).resolve()) for c in args.configfile]]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=args.workdir, capture_output=True, text=True)
    wall = time.perf_counter() - started
    (args.workdir / "snakemake.out").write_text(result.stdout + result.stderr)
    if result.returncode:
        sys.exit(f"snakemake failed ({result.returncode}); see {args.workdir / 'snakemake.out'}")
    report_started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--report", "results/report.html"],
        cwd=args.workdir,
        capture_output=True,
        check=True,
    )
    report_wall = time.perf_counter() - report_started
    table = benchmark_table(args.workdir)
    table = table[~table["job"].isin(before)]
    jobs_wall = table["wall_s"].sum()
    name = "DAG" if args.configfile or args.targets else "Default DAG"
    lines = [
        f"# {name}{' (added jobs)' if args.reuse else ''} on {args.cores} cores: {wall / 60:.1f} min"
        f" (snakemake --cores {args.cores}{''.join(' ' + t for t in args.targets)}"
        + (f" --configfile {' '.join(args.configfile)}" if args.configfile else "")
        + f"), report {report_wall:.0f} s",
        "",
        f"Sum of the jobs' wall times {jobs_wall / 60:.1f} min (jobs run in parallel where the DAG allows);"
        f" sum of CPU time {table['cpu_s'].sum() / 60:.1f} min. Jobs without a benchmark: directive"
        " (light local rules) are not listed.",
        "",
        "| job | wall s | CPU s | max RSS MB |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.job} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.max_rss_mb:.0f} |"
        for r in table.itertuples(index=False)
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
