"""Time htct.preprocess per scan on 512 x 512 head phantoms (28 x 5 mm and 56 x 2.5 mm) -> size 96 and 512.

Run: ``python benchmarks/bench_preprocess.py [--repeats 3] [--threads 2 --scans 4]``. With ``--scans``
it also times build_arrays over that many NIfTI files with ``--threads`` worker processes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from htct.preprocess import build_arrays, preprocess_volume


def head_phantom(n_slices: int, thickness_mm: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """512 x 512 head (brain 30 HU + noise, 6 mm skull, scalp) in a 0.45 mm grid, with a table below it."""
    pixel_mm = 0.45
    offsets = (np.arange(512) - 255.5) * pixel_mm
    x, y = np.meshgrid(offsets, offsets, indexing="ij")
    hu = np.full((512, 512, n_slices), -1000.0, dtype=np.float32)
    for k in range(n_slices):
        z = k * thickness_mm - n_slices * thickness_mm / 2 + 10.0
        r = np.sqrt((x / 70) ** 2 + (y / 85) ** 2 + (z / 60) ** 2)
        slice_hu = hu[:, :, k]
        slice_hu[r <= 1.16] = 40.0
        slice_hu[r <= 1.09] = 900.0
        slice_hu[r <= 1.0] = 30.0
        slice_hu[(y > 102) & (y < 106) & (np.abs(x) < 100)] = 200.0  # table top
    hu += np.random.default_rng(seed).normal(0.0, 4.0, hu.shape).astype(np.float32)
    return hu, np.diag([pixel_mm, pixel_mm, thickness_mm, 1.0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scans", type=int, default=0, help="also time build_arrays on this many scans")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for n_slices, thickness_mm in ((28, 5.0), (56, 2.5)):
        hu, affine = head_phantom(n_slices, thickness_mm)
        for size in (96, 512):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                preprocess_volume(hu, affine, size=size)
                times.append(time.perf_counter() - start)
            print(
                f"preprocess_volume 512x512x{n_slices} @ {thickness_mm} mm -> 28x{size}x{size}: "
                f"median {np.median(times):.2f} s (min {min(times):.2f}) per scan"
            )
    if args.scans:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            rows = []
            for n in range(args.scans):
                path = tmp / f"S{n}.nii.gz"
                nib.save(nib.Nifti1Image(*head_phantom(28, 5.0, seed=n)), path)
                rows.append({"scan_id": f"S{n}", "patient_id": f"P{n}", "label": n % 2, "nifti": str(path)})
            pd.DataFrame(rows).to_csv(tmp / "scans.tsv", sep="\t", index=False)
            for threads in sorted({1, args.threads}):
                start = time.perf_counter()
                build_arrays(tmp / "scans.tsv", tmp / f"arrays{threads}", size=96, threads=threads)
                elapsed = time.perf_counter() - start
                print(
                    f"build_arrays {args.scans} scans 512x512x28 -> 96, threads={threads}: "
                    f"{elapsed:.1f} s ({elapsed / args.scans:.2f} s per scan, NIfTI reading included)"
                )


if __name__ == "__main__":
    main()
