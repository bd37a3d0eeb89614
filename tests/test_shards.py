"""Sharded conversion and preprocessing (htct.shards; config shards.convert / shards.preprocess).

The workflow run with one shard and with several shards must give the same files, byte for byte:
the QC tables, every NIfTI, the arrays and their index and parameters.
"""

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from htct.errors import HTCTInputError
from htct.shards import check_shard, patients_per_shard, shard_of_patients, shard_runtime
from tests.conftest import copy_workflow

GATHERED = [
    "results/qc/series.tsv",
    "results/qc/scans.tsv",
    "results/arrays/volumes.npy",
    "results/arrays/brain_mask.npy",
    "results/arrays/index.tsv",
    "results/arrays/preprocess.json",
]


def test_shards_are_even_contiguous_blocks_of_sorted_patients():
    patients = [f"P{i:03d}" for i in range(10, 0, -1)] + ["P005"]  # unsorted, with a repeat
    shard_of = shard_of_patients(patients, 3)
    assert list(shard_of) == sorted(set(patients))
    sizes = np.bincount(list(shard_of.values()))
    assert sizes.tolist() == [4, 3, 3] and sizes.max() == patients_per_shard(10, 3)
    assert list(shard_of.values()) == sorted(shard_of.values())  # contiguous blocks
    assert set(shard_of_patients(["a", "b"], 5).values()) <= set(range(5))  # more shards than patients


def test_shard_runtime_covers_twice_the_largest_shard_and_the_whole_cohort_part():
    # 10,000 patients at 3 s each: one job needs 1000 min of work, 20 shards 50 min each.
    assert shard_runtime(10_000, 1, 0.05) == 10 + 2 * 500
    assert shard_runtime(10_000, 20, 0.05) == 10 + 2 * 25
    assert shard_runtime(10_000, 20, 0.05, whole_cohort_minutes_per_patient=0.001) == 10 + 10 + 50
    assert shard_runtime(7, 3, 1.0) == 10 + 2 * 3  # the largest shard has 3 patients


def test_a_shard_outside_the_shards_is_refused():
    with pytest.raises(HTCTInputError, match="numbered 0 to 2"):
        check_shard(3, 3)


def _run(workdir: Path, configfiles: list[str]) -> None:
    command = [sys.executable, "-m", "snakemake", *GATHERED, "--cores", "2", "--configfile", *configfiles]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        logs = "\n".join(f"--- {log}\n{log.read_text()[-3000:]}" for log in (workdir / "logs").rglob("*.log"))
        pytest.fail(f"snakemake failed:\n{result.stderr[-5000:]}\n{logs}")


@pytest.mark.slow
def test_one_shard_and_several_shards_give_the_same_files(tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    (workdir / "shards.yaml").write_text(yaml.safe_dump({"shards": {"convert": 3, "preprocess": 4}}))
    _run(workdir, ["tests/config/tiny.yaml"])
    one = tmp_path / "one_shard"
    for name in [*GATHERED, "results/nifti"]:
        (one / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (workdir / name).is_dir() else shutil.copy2)(workdir / name, one / name)

    _run(workdir, ["tests/config/tiny.yaml", "shards.yaml"])  # the same cohort, now in shards

    # Every shard did part of the work: three conversions and four preprocessing jobs ran.
    shard_scans = [
        pd.read_csv(workdir / f"results/shards/convert/{shard}/scans.tsv", sep="\t") for shard in range(3)
    ]
    assert all(len(scans) > 0 for scans in shard_scans)
    assert sorted(p.name for p in (workdir / "logs/preprocess").glob("shard*.log")) == [
        f"shard{shard}.log" for shard in range(4)
    ]
    qc = pd.read_csv(workdir / "results/qc/series.tsv", sep="\t")
    assert (qc["status"] == "excluded").any()  # the excluded rows (scouts, ...) were gathered too
    for name in GATHERED:
        assert filecmp.cmp(one / name, workdir / name, shallow=False), f"{name} differs with shards"
    niftis = sorted(p.name for p in (one / "results/nifti").glob("*.nii.gz"))
    assert niftis == sorted(p.name for p in (workdir / "results/nifti").glob("*.nii.gz"))
    assert len(niftis) == sum(len(scans) for scans in shard_scans)
    for name in niftis:
        assert filecmp.cmp(one / "results/nifti" / name, workdir / "results/nifti" / name, shallow=False), (
            name
        )
