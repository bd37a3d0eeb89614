"""Two clean runs of the tiny config with the same seeds give byte-identical results on the CPU."""

from __future__ import annotations

import hashlib

import pytest
from conftest import copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

# Everything a paper reports (tables, numbers, predictions) and what they are computed from. Figures
# and logs are left out: PDFs carry a creation date and logs carry timings by design.
COMPARED = (
    "results/tables/*",
    "results/numbers.json",
    "results/numbers.md",
    "results/predictions/*.tsv",
    "results/models/*/threshold.json",
    "results/qc/*.tsv",
    "results/split/*.tsv",
    "results/arrays/*",
    "results/nifti/*.nii.gz",
    "resources/synthetic/clinical.csv",
    "resources/synthetic/readers.csv",
)


def test_two_clean_runs_are_byte_identical(tiny_run, tmp_path):
    # The second run gets the first run's copy of the workflow, so that both run the same code even
    # while the repository is being edited.
    second = copy_workflow(tmp_path / "second_run", source_root=tiny_run)
    run_snakemake(second)
    files = sorted(path.relative_to(tiny_run) for pattern in COMPARED for path in tiny_run.glob(pattern))
    assert len(files) > 40
    assert any(str(path).startswith("results/tables/table2") for path in files)
    differing = [
        str(path)
        for path in files
        if hashlib.sha256((tiny_run / path).read_bytes()).digest()
        != hashlib.sha256((second / path).read_bytes()).digest()
    ]
    assert not differing, f"differ between two runs with the same seeds: {differing}"
    assert sorted(p.relative_to(second) for pattern in COMPARED for p in second.glob(pattern)) == files
