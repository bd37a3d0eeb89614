"""The paper's full resolution end to end on the CPU: config/full_resolution.yaml on a few synthetic
patients rendered at the 512 matrix (tests/config/full_resolution_cpu.yaml: CTNet at its GPU width,
one epoch), from DICOM through sharded conversion and preprocessing, training and prediction, then
`htct predict` on one of the scans. Nothing here is scaled down in-plane: 28 x 512 x 512 throughout.
"""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml

from htct.cli import main
from htct.dicom import series_key
from tests.conftest import copy_workflow

SIZE, N_SLICES = 512, 28
CONFIGS = ["config/full_resolution.yaml", "tests/config/full_resolution_cpu.yaml"]
TARGETS = ["results/arrays/volumes.npy", "results/predictions/ctnet.tsv"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("full_resolution"))
    command = [sys.executable, "-m", "snakemake", *TARGETS, "--cores", "2", "--configfile", *CONFIGS]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        logs = "\n".join(f"--- {log}\n{log.read_text()[-3000:]}" for log in (workdir / "logs").rglob("*.log"))
        pytest.fail(f"snakemake failed:\n{result.stderr[-5000:]}\n{logs}")
    return workdir


def _series_folder(workdir, key):
    """The synthetic DICOM folder holding the series with this series_key."""
    for folder in sorted((workdir / "resources/synthetic/dicom").glob("*/*/*")):
        first = next(folder.iterdir())
        if series_key(pydicom.dcmread(first, stop_before_pixels=True).SeriesInstanceUID) == key:
            return folder
    raise AssertionError(f"no DICOM folder holds series {key}")


@pytest.mark.slow
def test_full_resolution_arrays_model_and_predictions(full_run):
    scans = pd.read_csv(full_run / "results/qc/scans.tsv", sep="\t", dtype={"scan_id": str})
    assert len(scans) >= 8 and (scans[["rows", "columns"]] == SIZE).all().all()
    for scan in scans.itertuples():
        assert nib.load(full_run / scan.nifti).shape == (SIZE, SIZE, scan.n_slices)

    volumes = np.load(full_run / "results/arrays/volumes.npy", mmap_mode="r")
    masks = np.load(full_run / "results/arrays/brain_mask.npy", mmap_mode="r")
    assert volumes.shape == (len(scans), 1, N_SLICES, SIZE, SIZE) and volumes.dtype == np.float16
    assert masks.shape == (len(scans), N_SLICES, SIZE, SIZE)
    assert all(0 < masks[row].mean() < 1 for row in range(len(scans)))  # a brain in every scan, not a blank
    assert json.loads((full_run / "results/arrays/preprocess.json").read_text())["size"] == SIZE

    model_config = yaml.safe_load((full_run / "results/models/ctnet/config.yaml").read_text())
    assert model_config["preprocess"]["size"] == SIZE
    assert "width: 16" in (full_run / "results/models/ctnet/config.yaml").read_text()
    predictions = pd.read_csv(full_run / "results/predictions/ctnet.tsv", sep="\t", dtype={"scan_id": str})
    split = pd.read_csv(full_run / "results/split/split.tsv", sep="\t", dtype={"patient_id": str})
    test_patients = set(split.loc[split["part"] == "test", "patient_id"])
    assert set(predictions["patient_id"].astype(str)) >= test_patients
    assert predictions["p_ht"].between(0, 1).all() and predictions["p_ht"].notna().all()


@pytest.mark.slow
def test_htct_predict_at_full_resolution_is_aligned_with_the_scan(full_run, tmp_path, capsys):
    scan = pd.read_csv(full_run / "results/qc/scans.tsv", sep="\t", dtype={"scan_id": str}).iloc[0]
    out = tmp_path / "prediction"
    folder = _series_folder(full_run, scan.series_key)
    model = full_run / "results/models/ctnet"
    assert main(["predict", str(folder), "--model", str(model), "--out", str(out), "--threads", "2"]) == 0
    assert 0 <= json.loads((out / "prediction.json").read_text())["p_ht"] <= 1
    converted = nib.load(full_run / scan.nifti)
    scan_image, heatmap = nib.load(out / "scan.nii.gz"), nib.load(out / "heatmap.nii.gz")
    # The heatmap covers the scan's full 512 x 512 grid, voxel for voxel, in the same space.
    assert heatmap.shape == scan_image.shape == converted.shape == (SIZE, SIZE, scan.n_slices)
    assert np.allclose(heatmap.affine, converted.affine, atol=1e-4)
    assert np.allclose(scan_image.affine, converted.affine, atol=1e-4)
    assert np.allclose(scan_image.get_fdata(), converted.get_fdata(), atol=0.5)
    attention = np.asarray(heatmap.dataobj)
    assert np.isfinite(attention).all() and attention.max() > 0
