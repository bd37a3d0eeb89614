"""Table 1: baseline characteristics for total / training / test patients."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.sheets import load_clinical
from htct.tables import table1, write_table

clinical = load_clinical(snakemake.input.clinical)
split = pd.read_csv(snakemake.input.split, sep="\t", dtype={"patient_id": str})
table = table1(clinical, split)
stem = Path(snakemake.output.csv).with_suffix("")
write_table(
    table, stem, "Table 1. Baseline characteristics of the patients", synthetic=snakemake.params.synthetic
)
print(table.to_string(), file=sys.stderr)
