"""results/qc/patients.tsv: every patient of the clinical sheet, included or excluded with a reason.

Its own rule, so that the table is written even when the split cannot be drawn (a tiny cohort).
"""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.sheets import load_clinical
from htct.split import patient_status

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
fixed = (
    pd.read_csv(snakemake.input.fixed, sep="\t", dtype={"patient_id": str}) if snakemake.input.fixed else None
)
patients = patient_status(
    load_clinical(snakemake.input.clinical),
    pd.read_csv(snakemake.input.qc, sep="\t", dtype={"patient_id": str}),
    pd.read_csv(snakemake.input.scans, sep="\t", dtype={"patient_id": str, "scan_id": str}),
    fixed,
)
excluded = patients[patients["status"] == "excluded"]
if len(excluded):
    logging.warning(
        "%d of %d patient(s) of the clinical sheet are excluded (no kept scan), see %s: %s",
        len(excluded),
        len(patients),
        snakemake.output.patients,
        "; ".join(f"{row.patient_id}: {row.reason}" for row in excluded.head(20).itertuples()),
    )
patients.to_csv(snakemake.output.patients, sep="\t", index=False)
