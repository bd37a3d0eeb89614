"""Every number the paper's text quotes, as results/numbers.json and numbers.md."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.sheets import load_clinical
from htct.tables.numbers import paper_numbers, write_numbers
from htct.tables.reader_study import AVERAGE_READER, EVERY_SCAN_HT

metrics = pd.read_csv(snakemake.input.metrics, sep="\t")
models = snakemake.params.models
not_readers = {*models, AVERAGE_READER, EVERY_SCAN_HT}  # the models, the readers' mean, the reference row
readers = [r for r in dict.fromkeys(metrics["rater"]) if r not in not_readers]
numbers = paper_numbers(
    load_clinical(snakemake.input.clinical),
    pd.read_csv(snakemake.input.scans, sep="\t", dtype={"patient_id": str, "scan_id": str}),
    metrics,
    pd.read_csv(snakemake.input.agreement, sep="\t", index_col=[0, 1]),
    float(pd.read_csv(snakemake.input.fleiss, sep="\t").iloc[0, 0]),
    models,
    readers,
    snakemake.params.synthetic,
)
write_numbers(numbers, snakemake.output.json, snakemake.output.md, snakemake.output.html)
