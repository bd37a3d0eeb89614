"""The clinical-only model: logistic regression on age, sex and medication (htct.clinical)."""

import json
import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.clinical import fit_clinical
from htct.sheets import load_clinical

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
ids = {"patient_id": str, "scan_id": str}
clinical = load_clinical(snakemake.input.clinical)
split = pd.read_csv(snakemake.input.split, sep="\t", dtype=ids)
scans = pd.read_csv(snakemake.input.scans, sep="\t", dtype=ids)
model, predictions = fit_clinical(clinical, split, scans, snakemake.params.c)
logging.info("clinical model coefficients (log-odds):\n%s", model.coefficients.to_string())
predictions.to_csv(snakemake.output.predictions, sep="\t", index=False)
model.coefficients.to_frame().to_csv(snakemake.output.coefficients, sep="\t", index_label="term")
threshold = {
    "threshold": model.threshold,
    "method": "youden_j_on_validation",
    "synthetic": snakemake.params.synthetic,
}
Path(snakemake.output.threshold).write_text(json.dumps(threshold, indent=2) + "\n")
