"""Table 1: baseline characteristics for total / training / test patients."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.sheets import load_clinical
from htct.tables import table1_pretty, table1_tidy, write_table

clinical = load_clinical(snakemake.input.clinical)
split = pd.read_csv(snakemake.input.split, sep="\t", dtype={"patient_id": str})
tidy = table1_tidy(clinical, split)
table = table1_pretty(tidy)
stem = Path(snakemake.output.html).with_suffix("")
title = "Table 1. Baseline characteristics of the patients"
write_table(table, stem, title, synthetic=snakemake.params.synthetic, tidy=tidy)
print(table.to_string(), file=sys.stderr)
