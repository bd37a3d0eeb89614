"""Memory and time model at full resolution (28 x 512 x 512): per scan, on this machine's CPU.

Measures, each stage in a fresh process of its own (peak RSS = that process's ``ru_maxrss``, one
thread, so the figures are per core):
- conversion (``htct.dicom.convert_tree``) of a synthetic cohort rendered at the 512 matrix:
  seconds and peak RSS per scan, NIfTI bytes per scan;
- preprocessing (``htct.preprocess.build_arrays``) at ``size`` 512: seconds and peak RSS per scan,
  bytes per scan of volumes.npy and brain_mask.npy;
- one CTNet training step at 28 x 512 x 512 on the CPU (float32, AdamW, batch 2 and 4 (BatchNorm needs 2): the
  difference is what one more scan in a batch costs in activations);
- the loader: batches read at random rows from a memory-mapped volumes.npy (``BatchReader``), once
  after evicting the file from the page cache (``posix_fadvise DONTNEED``: disk) and once warm.
Then extrapolates to the paper-design cohort (474 patients, 613 scans) and to 10,000 scans: disk,
core-hours, RAM per job, and the scans/s a GPU node must train at (and its loader deliver).

With ``--shard-scaling K ...`` it measures instead how a shard job's peak RSS grows with the shard
(what rules/convert.smk's and rules/preprocess.smk's ``mem_mb`` must follow): on ``--cohort`` (any
matrix; preprocessing at ``--size``), for each K, shard 0 of K shards of conversion (the shard index
made first, as rule index_dicom does, when K > 1) and of preprocessing, each in a fresh process on
one thread; and the shard index job itself. Reports patients, files read, scans and peak RSS per
job, and the MB per patient of the growth (least squares over the K).

Run: python benchmarks/bench_memory.py [--patients 6 | --cohort resources/synthetic] [--loader-scans 48]
     [--out memory.json]
     python benchmarks/bench_memory.py --cohort <a synthetic cohort> --shard-scaling 1 4 12 --size 48
On a shared, loaded machine the times are upper bounds; say so next to them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE, N_SLICES = 512, 28
COHORTS = {"paper design (474 patients)": 613, "10,000 scans": 10_000}
GPU_HOURS = 12  # profiles/slurm's training runtime (720 min) for 20 epochs of the training scans
EPOCHS, TRAIN_SHARE = 20, 0.9 * 0.85  # split: 10% test, 15% of the rest validation


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _in_fresh_process(function, *args) -> dict:  # noqa: ANN001
    """Run ``function(*args)`` in a spawned process (its own peak RSS); returns its dict."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def synthesise(folder: str, n_patients: int) -> None:
    from htct.synth.generate import generate_cohort

    generate_cohort(folder, n_patients=n_patients, seed=11, matrix=SIZE, threads=2)


def convert(cohort: str, work: str) -> dict:
    from htct.dicom import convert_tree

    started = time.perf_counter()
    scans = convert_tree(f"{cohort}/dicom", f"{cohort}/clinical.csv", f"{work}/nifti",
                         f"{work}/series.tsv", f"{work}/scans.tsv", threads=1)  # fmt: skip
    seconds = time.perf_counter() - started
    nifti_bytes = sum(path.stat().st_size for path in Path(work, "nifti").glob("*.nii.gz"))
    return {"scans": len(scans), "seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "nifti_bytes": nifti_bytes,
            "slices_mean": float(scans["n_slices"].mean())}  # fmt: skip


def preprocess(work: str) -> dict:
    from htct.preprocess import build_arrays

    started = time.perf_counter()
    index = build_arrays(f"{work}/scans.tsv", f"{work}/arrays", size=SIZE, threads=1)
    seconds = time.perf_counter() - started
    return {"scans": len(index), "seconds": seconds, "peak_rss_mb": _peak_rss_mb(),
            "volumes_bytes": Path(work, "arrays/volumes.npy").stat().st_size,
            "brain_mask_bytes": Path(work, "arrays/brain_mask.npy").stat().st_size}  # fmt: skip


def train_step(batch_size: int, width: int) -> dict:
    import torch

    from htct.models import create_model
    from htct.train.loop import channels_last
    from htct.train.loop import train_step as step

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, memory_format = channels_last(create_model("ctnet", in_channels=1, n_slices=N_SLICES, width=width))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = torch.nn.BCEWithLogitsLoss()
    volumes = torch.rand(batch_size, 1, N_SLICES, SIZE, SIZE)
    labels = torch.tensor([float(i % 2) for i in range(batch_size)])
    rss_before = _peak_rss_mb()
    times = []
    for _ in range(2):  # the first step warms up (oneDNN primitives)
        started = time.perf_counter()
        step(model, optimizer, criterion, volumes, labels, None, memory_format, False)
        times.append(time.perf_counter() - started)
    return {"batch_size": batch_size, "width": width, "seconds": times[-1], "peak_rss_mb": _peak_rss_mb(),
            "rss_before_mb": rss_before, "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip


def loader(folder: str, n_scans: int, batch_size: int) -> dict:
    from htct.train.data import BatchReader

    path = Path(folder, "volumes.npy")
    volumes = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float16, shape=(n_scans, 1, N_SLICES, SIZE, SIZE)
    )
    rng = np.random.default_rng(0)
    for row in range(n_scans):  # non-constant data, so that nothing is sparse on disk
        volumes[row] = rng.random((1, N_SLICES, SIZE, SIZE), dtype=np.float32).astype(np.float16)
    volumes.flush()
    del volumes
    result = {"scans": n_scans, "bytes": path.stat().st_size, "batch_size": batch_size}
    for state in ("cold", "warm"):
        if state == "cold":
            os.sync()
            with open(path, "rb") as handle:
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        reader = BatchReader(path, dict.fromkeys(range(n_scans), 0.0))
        order = np.random.default_rng(1).permutation(n_scans)
        started = time.perf_counter()
        for start in range(0, n_scans - batch_size + 1, batch_size):
            reader[sorted(order[start : start + batch_size].tolist())]
        seconds = time.perf_counter() - started
        read = (n_scans // batch_size) * batch_size
        result[state] = {
            "scans_per_s": read / seconds,
            "mb_per_s": read * result["bytes"] / n_scans / seconds / 1e6,
        }
    return result


def plan(cohort: str, index: str, n_shards: int) -> dict:
    from htct.dicom import plan_shards

    started = time.perf_counter()
    result = plan_shards(f"{cohort}/dicom", f"{cohort}/clinical.csv", index, n_shards, threads=1)
    return {"seconds": time.perf_counter() - started, "files_read": result["n_files"],
            "patients": sum(result["patients_per_shard"]), "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def convert_shard(cohort: str, work: str, n_shards: int, index: str) -> dict:
    from htct.dicom import convert_tree, discover

    read = 0
    reader = discover.read_header

    def counting(path: Path, root: Path) -> discover.SliceHeader:
        nonlocal read
        read += 1
        return reader(path, root)

    import htct.dicom.convert

    htct.dicom.convert.read_header = counting  # one thread: headers are read in this process
    started = time.perf_counter()
    scans = convert_tree(f"{cohort}/dicom", f"{cohort}/clinical.csv", f"{work}/nifti", f"{work}/series.tsv",
                         f"{work}/scans.tsv", threads=1, shard=0, n_shards=n_shards,
                         shard_index=index if n_shards > 1 else None)  # fmt: skip
    return {"seconds": time.perf_counter() - started, "files_read": read, "scans": len(scans),
            "patients": int(scans["patient_id"].nunique()), "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def preprocess_shard(scans_tsv: str, work: str, n_shards: int, size: int) -> dict:
    from htct.preprocess import build_arrays

    started = time.perf_counter()
    index = build_arrays(scans_tsv, f"{work}/arrays", size=size, threads=1, shard=0, n_shards=n_shards)
    return {"seconds": time.perf_counter() - started, "scans": len(index),
            "patients": int(index["patient_id"].nunique()), "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def shard_scaling(cohort: str, shard_counts: list[int], size: int, tmp: str) -> dict:
    """Peak RSS of shard 0 of each count of shards, conversion and preprocessing; the growth per patient."""
    result: dict = {"convert": [], "preprocess": [], "index": []}
    for n_shards in shard_counts:
        index = f"{tmp}/index{n_shards}.json"
        if n_shards > 1:
            result["index"].append(_in_fresh_process(plan, cohort, index, n_shards))
        converted = _in_fresh_process(convert_shard, cohort, f"{tmp}/convert{n_shards}", n_shards, index)
        result["convert"].append({"n_shards": n_shards, **converted})
        print("convert", result["convert"][-1], flush=True)
    # Preprocessing shards the whole cohort's scans table (the one-shard conversion's).
    scans_tsv = f"{tmp}/convert{min(shard_counts)}/scans.tsv"
    for n_shards in shard_counts:
        prepared = _in_fresh_process(
            preprocess_shard, scans_tsv, f"{tmp}/preprocess{n_shards}", n_shards, size
        )
        result["preprocess"].append({"n_shards": n_shards, **prepared})
        print("preprocess", result["preprocess"][-1], flush=True)
    for stage in ("convert", "preprocess"):
        patients = np.array([job["patients"] for job in result[stage]], dtype=float)
        rss = np.array([job["peak_rss_mb"] for job in result[stage]])
        slope, intercept = np.polyfit(patients, rss, 1) if len(set(patients)) > 1 else (0.0, rss.mean())
        result[f"{stage}_mb_per_patient"], result[f"{stage}_base_mb"] = float(slope), float(intercept)
    return result


def model(measured: dict) -> dict:
    """The figures of a cohort of n scans from the per-scan measurements."""
    conv, prep, steps = measured["convert"], measured["preprocess"], measured["train_step"]
    per_scan = {
        "convert_s": conv["seconds"] / conv["scans"],
        "preprocess_s": prep["seconds"] / prep["scans"],
        "nifti_mb": conv["nifti_bytes"] / conv["scans"] / 1e6,
        "volumes_mb": prep["volumes_bytes"] / prep["scans"] / 1e6,
        "brain_mask_mb": prep["brain_mask_bytes"] / prep["scans"] / 1e6,
        "train_step_s_per_scan": steps[1]["seconds"] / steps[1]["batch_size"],
        "activation_mb_per_scan": (steps[1]["peak_rss_mb"] - steps[0]["peak_rss_mb"])
        / (steps[1]["batch_size"] - steps[0]["batch_size"]),
    }
    cohorts = {}
    for name, n in COHORTS.items():
        train_scans = n * TRAIN_SHARE
        cohorts[name] = {
            "scans": n,
            "disk_gb": {
                "nifti": n * per_scan["nifti_mb"] / 1e3,
                "volumes.npy": n * per_scan["volumes_mb"] / 1e3,
                "brain_mask.npy": n * per_scan["brain_mask_mb"] / 1e3,
            },
            "convert_core_hours": n * per_scan["convert_s"] / 3600,
            "preprocess_core_hours": n * per_scan["preprocess_s"] / 3600,
            "cpu_training_core_hours_per_epoch": train_scans * per_scan["train_step_s_per_scan"] / 3600,
            "gpu_scans_per_s_needed": EPOCHS * train_scans / (GPU_HOURS * 3600),
            "page_cache_gb_to_hold_volumes": n * per_scan["volumes_mb"] / 1e3,
        }
    return {"per_scan": per_scan, "cohorts": cohorts}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=6, help="synthetic patients rendered at 512")
    parser.add_argument(
        "--cohort", default="", help="an existing synthetic cohort at 512 (resources/synthetic)"
    )
    parser.add_argument("--loader-scans", type=int, default=48, help="rows of the loader's volumes.npy")
    parser.add_argument("--width", type=int, default=16, help="CTNet width (16: config/full_resolution.yaml)")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    parser.add_argument("--shard-scaling", type=int, nargs="+", default=[], metavar="K",
                        help="measure only shard 0 of K shards for each K (needs --cohort)")  # fmt: skip
    parser.add_argument("--size", type=int, default=48, help="preprocess.size of --shard-scaling")
    args = parser.parse_args()
    measured: dict = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                      "load_average_at_start": os.getloadavg()}  # fmt: skip
    if args.shard_scaling:
        if not args.cohort:
            parser.error("--shard-scaling needs --cohort")
        with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
            measured["shard_scaling"] = shard_scaling(args.cohort, sorted(args.shard_scaling), args.size, tmp)
        measured["load_average_at_end"] = os.getloadavg()
        print(json.dumps(measured, indent=2))
        if args.out:
            Path(args.out).write_text(json.dumps(measured, indent=2) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        cohort = args.cohort or f"{tmp}/cohort"
        if not args.cohort:
            _in_fresh_process(synthesise, cohort, args.patients)
        measured["convert"] = _in_fresh_process(convert, cohort, f"{tmp}/work")
        print("convert", measured["convert"], flush=True)
        measured["preprocess"] = _in_fresh_process(preprocess, f"{tmp}/work")
        print("preprocess", measured["preprocess"], flush=True)
        measured["train_step"] = [_in_fresh_process(train_step, b, args.width) for b in (2, 4)]
        print("train_step", measured["train_step"], flush=True)
        measured["loader"] = _in_fresh_process(loader, tmp, args.loader_scans, 8)
        print("loader", measured["loader"], flush=True)
    measured["load_average_at_end"] = os.getloadavg()
    measured["model"] = model(measured)
    print(json.dumps(measured, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(measured, indent=2) + "\n")


if __name__ == "__main__":
    main()
