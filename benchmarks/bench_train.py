"""Training throughput (scans/s) and share of step time spent waiting for data.

CPU at demo size (28x96x96, the default) or, with --device cuda, on a GPU at full size, e.g.
`python benchmarks/bench_train.py --device cuda --size 512 --batch-size 4`. Uses a toy cohort
written to a temporary folder and the training loop's own pieces: batch reader, DataLoader options
(GPU: worker processes, prefetch, pinned memory), augmentation, channels-last input, bf16 autocast
on the GPU, AdamW (`htct.train.loop.train_step`, the training loop's own step). "Data wait" is the time a step spends getting its batch onto the device (from
the loader and the host-to-device copy); the rest is compute.

Run: python benchmarks/bench_train.py [--steps 6] [--threads 2] [--size 96] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from htct.models import create_model
from htct.testing.arrays import write_toy_arrays
from htct.train.data import BatchReader, loader_options
from htct.train.loop import channels_last, train_step
from htct.train.trainer import configure_torch


def bench(
    model_name: str,
    volumes_npy: str,
    labels: dict[int, float],
    steps: int,
    batch_size: int,
    device: torch.device,
    workers: int,
    cpu_bf16: bool = False,
    **kw,
) -> dict:
    on_gpu = device.type == "cuda"

    def sync() -> None:
        if on_gpu:
            torch.cuda.synchronize(device)

    torch.manual_seed(0)
    model, input_memory_format = channels_last(create_model(model_name, **kw).to(device))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = torch.nn.BCEWithLogitsLoss()
    reader = BatchReader(volumes_npy, labels)
    generator = torch.Generator().manual_seed(0)
    rows = np.arange(len(labels))
    # step 0 warms up (oneDNN primitive creation, cuDNN autotuning)
    batches = [
        sorted(np.random.default_rng(step).choice(rows, batch_size, replace=False).tolist())
        for step in range(steps + 1)
    ]
    loader = iter(
        torch.utils.data.DataLoader(
            reader, batch_size=None, sampler=batches, **loader_options(on_gpu, workers)
        )
    )
    data_seconds = step_seconds = 0.0
    for step in range(steps + 1):
        start = time.perf_counter()
        volumes, y = next(loader)
        volumes, y = volumes.to(device, non_blocking=True), y.to(device, non_blocking=True)
        sync()
        loaded = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16):
            train_step(model, optimizer, criterion, volumes, y, generator, input_memory_format, on_gpu)
        sync()
        end = time.perf_counter()
        if step:
            data_seconds += loaded - start
            step_seconds += end - start
    return {
        "model": model_name + (f"[{kw['conv']}]" if "conv" in kw else ""),
        "scans_per_s": steps * batch_size / step_seconds,
        "data_share": data_seconds / step_seconds,
    }


def run_in_parallel(args: argparse.Namespace) -> None:
    """Start ``--parallel`` copies of this benchmark at once and report each model's summed scans/s."""
    import re
    import subprocess
    import sys

    command = [sys.executable, __file__, "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    command += ["--threads", str(args.threads), "--size", str(args.size), "--patients", str(args.patients)]
    command += ["--models", *args.models] if args.models else []
    command += ["--cpu-bf16"] if args.cpu_bf16 else []
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(args.parallel)]
    outputs = [run.communicate()[0] for run in runs]
    totals: dict[str, float] = {}
    for output in outputs:
        for name, rate in re.findall(r"^(\S+)\s+([\d.]+)\s+[\d.]+ %$", output, flags=re.M):
            if name != "model":
                totals[name] = totals.get(name, 0.0) + float(rate)
    print(
        f"{args.parallel} copies at once, {args.threads} thread(s) each, input 1x28x{args.size}x{args.size}"
    )
    for name, rate in totals.items():
        print(f"{name:<18} {rate:8.1f} scans/s in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers on the GPU")
    parser.add_argument("--patients", type=int, default=64)
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="run this many copies at once (as Snakemake runs trainings side by side) and sum their scans/s",
    )
    parser.add_argument("--models", nargs="*", default=None, help="only these (e.g. ctnet wozniak2023)")
    parser.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="CPU forward pass under bf16 autocast (not what training does: measures whether it would pay)",
    )
    args = parser.parse_args()
    if args.parallel > 1:
        run_in_parallel(args)
        return
    device = torch.device(args.device)
    configure_torch(device.type == "cuda", args.threads)  # as the trainer does: deterministic on CPU
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_toy_arrays(tmp, n_patients=args.patients, size=args.size)
        labels = {i: float(i % 2) for i in range(args.patients)}
        where = (
            torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
        )
        print(
            f"{where}{', bf16 autocast' if args.cpu_bf16 else ''}, batch {args.batch_size}, "
            f"input 1x28x{args.size}x{args.size}"
        )
        print("model               scans/s  data wait (share of step)")
        for name, kw in [
            ("ctnet", {"conv": "3d"}),
            ("ctnet", {"conv": "2d"}),
            ("wozniak2023", {}),
            ("soundari2022", {}),
        ]:
            if args.models and name not in args.models:
                continue
            r = bench(
                name,
                str(paths["volumes"]),
                labels,
                args.steps,
                args.batch_size,
                device,
                args.workers,
                cpu_bf16=args.cpu_bf16,
                **kw,
            )
            print(f"{r['model']:<18} {r['scans_per_s']:8.1f}  {100 * r['data_share']:5.1f} %")


if __name__ == "__main__":
    main()
