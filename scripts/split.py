"""Draw (or reuse) the patient-level split and fail on any patient in two parts."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.sheets import load_clinical
from htct.split import check_split, make_split, scans_by_part

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
params = snakemake.params.split
clinical = load_clinical(snakemake.input.clinical)
scans = pd.read_csv(snakemake.input.scans, sep="\t", dtype={"patient_id": str, "scan_id": str})
if snakemake.input.fixed:
    split = pd.read_csv(snakemake.input.fixed, sep="\t", dtype={"patient_id": str})
    logging.info("reusing the split in %s", snakemake.input.fixed)
else:
    split = make_split(
        clinical, scans, params["seed"], params["test_fraction"], params["val_fraction"], params["k_folds"]
    )
check_split(split, scans)
for part, patients in split.groupby("part"):
    logging.info(
        "%s: %d patients, %d scans, %d with HT",
        part,
        len(patients),
        patients["n_scans"].sum(),
        patients["label"].sum(),
    )
split.to_csv(snakemake.output.split, sep="\t", index=False)
scans_by_part(split, scans).to_csv(snakemake.output.scans, sep="\t", index=False)
