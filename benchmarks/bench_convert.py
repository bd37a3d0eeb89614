"""Time htct.dicom.convert_tree against dcm2niix on one 140-slice 512x512 CT series.

Both write gzip-compressed NIfTI from the same files in the same run (page cache warm for both, best
of ``--repeats``). dcm2niix is single-threaded; ours uses ``--threads`` (and is also timed with 1). Two dcm2niix settings are timed: ``-z y -1`` (gzip level 1, the level we write:
the fair comparison) and its default ``-z y`` (level 6). dcm2niix uses pigz when one is on PATH
(reported below), otherwise its built-in single-threaded zlib.

    python benchmarks/bench_convert.py [--threads 2] [--repeats 3] [--slices 140]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from htct.dicom import convert_tree
from htct.dicom.testing import head_phantom, write_ct_series
from htct.dicom.volume import DEFLATE_BACKEND


def dcm2niix_binary() -> str:
    """dcm2niix from the active environment (the PyPI package puts it next to python)."""
    candidate = Path(sys.executable).parent / "dcm2niix"
    found = str(candidate) if candidate.exists() else shutil.which("dcm2niix")
    if not found:
        raise SystemExit("dcm2niix not found: pip install dcm2niix")
    return found


def best_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", type=int, default=140)
    parser.add_argument("--matrix", type=int, default=512)
    args = parser.parse_args()
    binary = dcm2niix_binary()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hu = head_phantom(args.slices, args.matrix, args.matrix, seed=1)
        write_ct_series(tmp / "dicom", hu=hu, slice_thickness=1.0, pixel_spacing=0.45, patient_id="BENCH")
        (tmp / "clinical.csv").write_text(
            "patient_id,dicom_patient_id,label,age,sex,medication\nB1,BENCH,0,70,F,none\n"
        )

        def ours(threads: int = args.threads) -> None:
            convert_tree(tmp / "dicom", tmp / "clinical.csv", tmp / "ours", tmp / "qc.tsv", tmp / "scans.tsv",
                         threads=threads)  # fmt: skip

        def dcm2niix(*level: str) -> None:
            out = tmp / "d2n"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            subprocess.run([binary, "-z", "y", *level, "-f", "%s", "-o", str(out), str(tmp / "dicom")],
                           check=True, capture_output=True)  # fmt: skip

        ours()  # warm-up: page cache, imports
        t_ours = best_time(ours, args.repeats)
        t_ours_1 = best_time(lambda: ours(1), args.repeats)
        t_d2n_1 = best_time(lambda: dcm2niix("-1"), args.repeats)
        reference = nib.as_closest_canonical(nib.load(next((tmp / "d2n").glob("*.nii.gz"))))
        t_d2n_6 = best_time(dcm2niix, args.repeats)
        converted = nib.as_closest_canonical(nib.load(tmp / "ours" / "B1_scan1.nii.gz"))
        same = np.array_equal(converted.get_fdata(), reference.get_fdata()) and np.allclose(
            converted.affine, reference.affine, atol=1e-4
        )
        sizes = {p.parent.name: p.stat().st_size for p in tmp.glob("*/*.nii.gz")}
    print(f"series: {args.slices} slices x {args.matrix}x{args.matrix}, int16; threads={args.threads}, "
          f"cpus={os.cpu_count()}, pigz on PATH: {bool(shutil.which('pigz'))}")  # fmt: skip
    print(
        f"htct convert_tree (gzip level 1):  {t_ours:.3f} s  ({sizes.get('ours', 0) / 1e6:.1f} MB, deflate: {DEFLATE_BACKEND})"
    )
    print(f"htct convert_tree, threads=1:      {t_ours_1:.3f} s")
    print(f"dcm2niix -z y -1 (gzip level 1):    {t_d2n_1:.3f} s")
    print(f"dcm2niix -z y    (default level 6): {t_d2n_6:.3f} s  ({sizes.get('d2n', 0) / 1e6:.1f} MB)")
    print(f"ratio ours / dcm2niix (same level 1): {t_ours / t_d2n_1:.2f}")
    print(f"ratio ours / dcm2niix (its default):  {t_ours / t_d2n_6:.2f}")
    print(f"ratio ours threads=1 / dcm2niix (level 1): {t_ours_1 / t_d2n_1:.2f}")
    print(f"voxels and affine identical to dcm2niix: {same}")


if __name__ == "__main__":
    main()
