"""Re-render the synthetic test scans with one image factor left out, as DICOM (htct.synth.counterfactual)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

import pandas as pd  # noqa: E402

from htct.synth.counterfactual import generate_counterfactuals  # noqa: E402

split = pd.read_csv(snakemake.input.split, sep="\t", dtype={"patient_id": str})
test_patients = split.loc[split["part"] == "test", "patient_id"]
generate_counterfactuals(
    snakemake.output.dicom,
    snakemake.output.clinical,
    snakemake.output.oracle,
    snakemake.wildcards.factor,
    test_patients,
    snakemake.input.truth,
    **snakemake.params.synthetic,
    threads=snakemake.threads,
)
