"""One repeat's split (rule repeat_split): patient-level, or by image for the leakage analysis."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import logging

import pandas as pd

from htct.paper.repeats import repeat_split, scans_of_split
from htct.sheets import load_clinical
from htct.split import check_split, patients_in_several_parts

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
params = snakemake.params.split
kind = snakemake.wildcards.kind
scans = pd.read_csv(snakemake.input.scans, sep="\t", dtype={"patient_id": str, "scan_id": str})
split = repeat_split(
    load_clinical(snakemake.input.clinical),
    scans,
    kind,
    snakemake.params.seed,
    params["test_fraction"],
    params["val_fraction"],
)
if kind == "patient":
    check_split(split, scans)
logging.info(
    "%s split, seed %d: %d patients in several parts", kind, snakemake.params.seed,
    patients_in_several_parts(scans_of_split(split, scans)),
)  # fmt: skip
split.to_csv(snakemake.output.split, sep="\t", index=False)
scans_of_split(split, scans).to_csv(snakemake.output.scans, sep="\t", index=False)
