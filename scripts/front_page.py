"""The report's front page with the statement of the cohort this run used (size from its results)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.report.cohort import cohort_summary, front_page
from htct.sheets import load_clinical

ids = {"patient_id": str, "scan_id": str}
summary = cohort_summary(
    load_clinical(snakemake.input.clinical),
    pd.read_csv(snakemake.input.patients, sep="\t", dtype=ids),
    pd.read_csv(snakemake.input.scans, sep="\t", dtype=ids),
    pd.read_csv(snakemake.input.readers) if snakemake.input.readers else None,
    snakemake.params.data,
    snakemake.params.synthetic,
)
print(summary, file=sys.stderr)
template = Path(snakemake.input.template).read_text(encoding="utf-8")
Path(snakemake.output[0]).write_text(front_page(template, summary), encoding="utf-8")
