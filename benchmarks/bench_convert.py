"""Time htct.dicom.convert_tree against dcm2niix on one 140-slice 512x512 CT series, straight and tilted.

Both write gzip-compressed NIfTI from the same files in the same run (page cache warm for both, best
of ``--repeats``). dcm2niix is single-threaded; ours uses ``--threads`` (and is also timed with 1). Two dcm2niix settings are timed: ``-z y -1`` (gzip level 1, the level we write:
the fair comparison) and its default ``-z y`` (level 6). dcm2niix uses pigz when one is on PATH
(reported below), otherwise its built-in single-threaded zlib.

The tilted copy (``--tilt`` degrees about x, the usual head-CT tilt) times the gantry tilt correction
against dcm2niix, which corrects it too (and writes the uncorrected volume beside it), and reports
the voxel difference inside the head between the two corrected volumes.

    python benchmarks/bench_convert.py [--threads 2] [--repeats 3] [--slices 140] [--tilt 15]
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
from htct.dicom.volume import DEFLATE_BACKEND
from htct.preprocess.brain import head_mask
from htct.testing.dicom import head_phantom, write_ct_series


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


def tilted_series(folder: Path, hu: np.ndarray, tilt_deg: float) -> None:
    """The phantom acquired with the gantry tilted about x: slice planes lean, the table moves along z."""
    theta = np.radians(tilt_deg)
    positions_z = [k * 1.0 / np.cos(theta) for k in range(len(hu))]  # 1 mm apart along the normal
    # What dcm2niix needs to correct the tilt right: signed stored values (rescale 1/0; it corrects int16
    # data only), a Manufacturer (its shift sign depends on the vendor) and InstanceNumbers in spatial
    # order (otherwise its corrected volume lies one row extension away from the truth).
    write_ct_series(folder, hu=hu, slice_thickness=1.0, pixel_spacing=0.45, patient_id="BENCH", rescale=(1.0, 0.0),
                    orientation=(1, 0, 0, 0, np.cos(theta), -np.sin(theta)), positions_z=positions_z,
                    gantry_tilt=tilt_deg, manufacturer="GE MEDICAL SYSTEMS", spatial_instance_numbers=True)  # fmt: skip


def inside_head_difference(ours: Path, reference: Path) -> np.ndarray:
    """|ours - dcm2niix| in HU over the head (both in RAS voxel order; same grid required)."""
    a, b = nib.as_closest_canonical(nib.load(ours)), nib.as_closest_canonical(nib.load(reference))
    if a.shape != b.shape or not np.allclose(a.affine, b.affine, atol=1e-3):
        raise SystemExit(f"grids differ: {a.shape} vs {b.shape}")
    spacing = b.header.get_zooms()
    head = np.moveaxis(head_mask(np.moveaxis(b.get_fdata(), 2, 0), spacing[0], spacing[1]), 0, 2)
    return np.abs(a.get_fdata() - b.get_fdata())[head]


def compare(tmp: Path, dicom: Path, repeats: int, threads: int) -> dict[str, float | Path]:
    """Best-of-``repeats`` times of ours (``threads`` and 1) and dcm2niix (gzip level 1 and 6) on one series."""
    (tmp / "clinical.csv").write_text(
        "patient_id,dicom_patient_id,label,age,sex,medication\nB1,BENCH,0,70,F,none\n"
    )

    def ours(threads: int = threads) -> None:
        convert_tree(
            dicom, tmp / "clinical.csv", tmp / "ours", tmp / "qc.tsv", tmp / "scans.tsv", threads=threads
        )

    def dcm2niix(*level: str) -> None:
        out = tmp / "d2n"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        subprocess.run([dcm2niix_binary(), "-z", "y", *level, "-b", "n", "-f", "%s", "-o", str(out), str(dicom)],
                       check=True, capture_output=True)  # fmt: skip

    ours()  # warm-up: page cache, imports
    times = {"ours": best_time(ours, repeats), "ours_1": best_time(lambda: ours(1), repeats)}
    times["d2n_1"] = best_time(lambda: dcm2niix("-1"), repeats)
    # dcm2niix also writes the uncorrected volume of a tilted series; its corrected one ends in _Tilt*.
    outputs = sorted((tmp / "d2n").glob("*.nii.gz"), key=lambda p: ("_Tilt" not in p.name, p.name))
    reference = tmp / "reference.nii.gz"
    shutil.copy(outputs[0], reference)
    times["d2n_6"] = best_time(dcm2niix, repeats)
    sizes = {name: (tmp / name).glob("*.nii.gz") for name in ("ours", "d2n")}
    return times | {f"{name}_mb": sum(p.stat().st_size for p in files) / 1e6 for name, files in sizes.items()} | {
        "converted": tmp / "ours" / "B1_scan1.nii.gz", "reference": reference}  # fmt: skip


def report(label: str, result: dict, threads: int) -> None:
    print(f"-- {label}")
    print(
        f"htct convert_tree (gzip level 1):  {result['ours']:.3f} s  ({result['ours_mb']:.1f} MB, deflate: {DEFLATE_BACKEND})"
    )
    print(f"htct convert_tree, threads=1:      {result['ours_1']:.3f} s")
    print(f"dcm2niix -z y -1 (gzip level 1):    {result['d2n_1']:.3f} s")
    print(
        f"dcm2niix -z y    (default level 6): {result['d2n_6']:.3f} s  ({result['d2n_mb']:.1f} MB, all outputs)"
    )
    print(f"ratio ours / dcm2niix (same level 1): {result['ours'] / result['d2n_1']:.2f}")
    print(f"ratio ours / dcm2niix (its default):  {result['ours'] / result['d2n_6']:.2f}")
    print(f"ratio ours threads=1 / dcm2niix (level 1): {result['ours_1'] / result['d2n_1']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", type=int, default=140)
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument(
        "--tilt", type=float, default=15.0, help="gantry tilt (deg) of the tilted copy; 0: skip"
    )
    args = parser.parse_args()
    print(f"series: {args.slices} slices x {args.matrix}x{args.matrix}, int16; threads={args.threads}, "
          f"cpus={os.cpu_count()}, pigz on PATH: {bool(shutil.which('pigz'))}")  # fmt: skip
    hu = head_phantom(args.slices, args.matrix, args.matrix, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_ct_series(tmp / "dicom", hu=hu, slice_thickness=1.0, pixel_spacing=0.45, patient_id="BENCH")
        axial = compare(tmp, tmp / "dicom", args.repeats, args.threads)
        converted, reference = (
            nib.as_closest_canonical(nib.load(axial[k])) for k in ("converted", "reference")
        )
        same = np.array_equal(converted.get_fdata(), reference.get_fdata()) and np.allclose(
            converted.affine, reference.affine, atol=1e-4
        )
        report("axial series", axial, args.threads)
        print(f"voxels and affine identical to dcm2niix: {same}")
    if args.tilt:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            tilted_series(tmp / "dicom", hu, args.tilt)
            tilted = compare(tmp, tmp / "dicom", args.repeats, args.threads)
            difference = inside_head_difference(tilted["converted"], tilted["reference"])
            report(f"the same series, gantry tilt {args.tilt:g} deg (ours: tilt-corrected; dcm2niix: also _Tilt)",
                   tilted, args.threads)  # fmt: skip
            print(f"|ours - dcm2niix _Tilt| inside the head: mean {difference.mean():.3f} HU, "
                  f"95th percentile {np.percentile(difference, 95):.2f} HU, max {difference.max():.1f} HU")  # fmt: skip


if __name__ == "__main__":
    main()
