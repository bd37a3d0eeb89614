"""Training throughput (scans/s) and share of step time spent waiting for data, CPU, demo size 28x96x96.

Run: python benchmarks/bench_train.py [--steps 6] [--threads 2]. Uses a toy cohort of the demo's size
written to a temporary folder and the same batch reader, augmentation and optimiser as htct.train.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from htct.models import create_model
from htct.train.data import BatchReader, augment_batch
from htct.train.toy import write_toy_arrays


def bench(
    model_name: str, volumes_npy: str, labels: dict[int, float], steps: int, batch_size: int, **kw
) -> dict:
    torch.manual_seed(0)
    model = create_model(model_name, **kw)
    is_3d = any(isinstance(m, torch.nn.Conv3d) for m in model.modules())
    memory_format = torch.channels_last_3d if is_3d else torch.channels_last
    model = model.to(memory_format=memory_format).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = torch.nn.BCEWithLogitsLoss()
    reader = BatchReader(volumes_npy, labels)
    generator = torch.Generator().manual_seed(0)
    rows = np.arange(len(labels))
    data_seconds = step_seconds = 0.0
    for step in range(steps + 1):  # step 0 warms up (oneDNN primitive creation)
        start = time.perf_counter()
        volumes, y = reader[
            sorted(np.random.default_rng(step).choice(rows, batch_size, replace=False).tolist())
        ]
        volumes = augment_batch(volumes, generator)
        if is_3d:
            volumes = volumes.contiguous(memory_format=memory_format)
        loaded = time.perf_counter()
        optimizer.zero_grad()
        loss = criterion(model(volumes).squeeze(1), y)
        loss.backward()
        optimizer.step()
        end = time.perf_counter()
        if step:
            data_seconds += loaded - start
            step_seconds += end - start
    return {
        "model": model_name + (f"[{kw['conv']}]" if "conv" in kw else ""),
        "scans_per_s": steps * batch_size / step_seconds,
        "data_share": data_seconds / step_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_toy_arrays(tmp, n_patients=64, size=args.size)
        labels = {i: float(i % 2) for i in range(64)}
        print(f"CPU, {args.threads} threads, batch {args.batch_size}, input 1x28x{args.size}x{args.size}")
        print("model               scans/s  data wait (share of step)")
        for name, kw in [
            ("ctnet", {"conv": "3d"}),
            ("ctnet", {"conv": "2d"}),
            ("wozniak2023", {}),
            ("soundari2022", {}),
        ]:
            r = bench(name, str(paths["volumes"]), labels, args.steps, args.batch_size, **kw)
            print(f"{r['model']:<18} {r['scans_per_s']:8.1f}  {100 * r['data_share']:5.1f} %")


if __name__ == "__main__":
    main()
