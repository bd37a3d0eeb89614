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

import htct.dicom.convert
from htct.dicom import convert_tree, gather_conversion, plan_shards
from htct.errors import HTCTInputError
from htct.shards import check_shard, patients_per_shard, shard_mem_mb, shard_of_patients, shard_runtime
from htct.testing.dicom import write_ct_series
from tests.conftest import copy_workflow
from tests.test_dicom import CLINICAL_HEADER, PATIENTS, build_tree

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


def test_shard_memory_grows_with_the_largest_shard_only():
    assert shard_mem_mb(474, 1, 1000, 5.3) == 1000 + 2513  # the demo's size in one job
    assert shard_mem_mb(10_000, 20, 1000, 5.3) == 1000 + 2650  # 500 patients a shard
    assert shard_mem_mb(7, 3, 1000, 1.0) == 1000 + 3  # the largest shard has 3 patients
    assert shard_mem_mb(10_000, 20, 4000, 0.0) == 4000


def test_a_shard_outside_the_shards_is_refused():
    with pytest.raises(HTCTInputError, match="numbered 0 to 2"):
        check_shard(3, 3)


def _tree_with_a_shared_folder(root: Path) -> Path:
    """test_dicom's tree (faults, an unknown patient, a text file) and a folder of two patients: an axial
    series of D04, a scout of E05 and a file cut inside its file meta (no PatientID, no series), which
    one job links to D04's series (the folder's one axial series) but to no patient (two in the folder)."""
    build_tree(root / "dicom")
    mixed = root / "dicom" / "mixed"
    axial = write_ct_series(mixed, patient_id="MRN-4004", file_names=[f"d{k:02d}.dcm" for k in range(24)])
    write_ct_series(mixed, patient_id="MRN-5005", n_slices=1, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
                    file_names=["e00.dcm"])  # fmt: skip
    (mixed / "cut.dcm").write_bytes(axial[3].read_bytes()[:200])
    clinical = root / "clinical.csv"
    patients = {mrn: pid for mrn, (pid, _) in PATIENTS.items()} | {"MRN-4004": "D04", "MRN-5005": "E05"}
    clinical.write_text(
        CLINICAL_HEADER + "".join(f"{pid},{mrn},1,60,F,none\n" for mrn, pid in patients.items())
    )
    return clinical


def test_each_conversion_shard_reads_only_its_files_and_the_gather_equals_one_job(tmp_path, monkeypatch):
    clinical = _tree_with_a_shared_folder(tmp_path)
    dicom, out = tmp_path / "dicom", tmp_path / "out"
    tables = ("series.tsv", "scans.tsv")
    convert_tree(dicom, clinical, out / "nifti", out / tables[0], out / tables[1])
    one = out.rename(tmp_path / "one_job")

    index = plan_shards(dicom, clinical, tmp_path / "index.json", 3)
    # Patients A01 B02 | C03 D04 | E05 by sorted blocks, but D04 and E05 are tied by the cut file.
    assert index["patient_shards"] == {"A01": 0, "B02": 0, "C03": 1, "D04": 1, "E05": 1}
    assert (
        plan_shards(dicom, clinical, tmp_path / "index2.json", 3, threads=2) == index
    )  # headers in processes
    read: list[Path] = []
    reader = htct.dicom.convert.read_header
    monkeypatch.setattr(
        htct.dicom.convert, "read_header", lambda path, root: read.append(path) or reader(path, root)
    )
    shard_reads = []
    for shard in range(3):
        read.clear()
        convert_tree(dicom, clinical, tmp_path / f"s{shard}" / "nifti", tmp_path / f"s{shard}" / tables[0],
                     tmp_path / f"s{shard}" / tables[1], shard=shard, n_shards=3,
                     shard_index=tmp_path / "index.json")  # fmt: skip
        shard_reads.append(set(read))
        assert len(read) == index["files_per_shard"][shard]  # each of its files once, no other
    every_file = {path for path in dicom.rglob("*") if path.is_file()}
    assert set.union(*shard_reads) == every_file and sum(map(len, shard_reads)) == len(every_file)
    assert {dicom / "mixed" / name for name in ("cut.dcm", "e00.dcm", "d00.dcm")} <= shard_reads[1]
    assert not shard_reads[2]  # an empty shard is allowed (more shards than units)

    gather_conversion([tmp_path / f"s{k}" / "nifti" for k in range(3)],
                      [tmp_path / f"s{k}" / tables[0] for k in range(3)],
                      [tmp_path / f"s{k}" / tables[1] for k in range(3)],
                      out / "nifti", out / tables[0], out / tables[1])  # fmt: skip
    for name in tables:
        assert filecmp.cmp(one / name, out / name, shallow=False), name
    qc = pd.read_csv(out / tables[0], sep="\t", dtype=str, keep_default_na=False)
    assert "a slice of series" in qc.loc[qc["patient_id"] == "", "reason"].str.cat()  # the cut file, linked
    niftis = sorted(path.name for path in (one / "nifti").iterdir())
    assert niftis == sorted(path.name for path in (out / "nifti").iterdir()) and "D04_scan1.nii.gz" in niftis
    for name in niftis:
        assert filecmp.cmp(one / "nifti" / name, out / "nifti" / name, shallow=False), name


def test_a_stale_or_missing_shard_index_is_refused(tmp_path):
    clinical = _tree_with_a_shared_folder(tmp_path)
    dicom, out = tmp_path / "dicom", tmp_path / "out"
    plan_shards(dicom, clinical, tmp_path / "index.json", 2)
    args = (dicom, clinical, out / "nifti", out / "q.tsv", out / "s.tsv")
    with pytest.raises(HTCTInputError, match="needs the shard index"):
        convert_tree(*args, shard=0, n_shards=2)
    with pytest.raises(HTCTInputError, match="into 2 shards, not 3"):
        convert_tree(*args, shard=0, n_shards=3, shard_index=tmp_path / "index.json")
    (dicom / "mixed" / "late.dcm").write_bytes(b"arrived after the index")
    with pytest.raises(HTCTInputError, match="changed since"):
        convert_tree(*args, shard=1, n_shards=2, shard_index=tmp_path / "index.json")


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
