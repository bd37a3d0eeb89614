"""The leakage sensitivity analysis (rule leakage): CTNet on an image-level split beside the patient-level one."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from pathlib import Path

import pandas as pd

from htct.paper.repeats import concat_tsv, leakage_pretty, leakage_table
from htct.split import patients_in_several_parts
from htct.tables import write_table

metrics = pd.concat([concat_tsv(snakemake.input.patient), concat_tsv(snakemake.input.image)])
leaked = [patients_in_several_parts(concat_tsv([path])) for path in snakemake.input.image_splits]
table = leakage_table(metrics, snakemake.params.model)
title = (
    f"Sensitivity analysis: CTNet with a split by image (a patient's scans on both sides; "
    f"{min(leaked)}-{max(leaked)} patients straddle parts) beside the patient-level split, same seeds; "
    "inflation = image minus patient, per repeat, median and 2.5-97.5th percentiles"
)
write_table(
    leakage_pretty(table),
    Path(snakemake.output.table).with_suffix(""),
    title,
    snakemake.params.synthetic,
    tidy=table,
)
