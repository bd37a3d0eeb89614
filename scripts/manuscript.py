"""The reproduction report: results/manuscript/report.html and report.pdf, from the run's outputs."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from htct.manuscript.report import write_report

write_report(
    Path.cwd(),  # Snakemake runs jobs in the workflow's directory: the inputs' paths are relative to it
    snakemake.params.models,
    snakemake.params.synthetic,
    Path(snakemake.output.html),
    Path(snakemake.output.pdf),
    rules=dict(snakemake.params.files),
    k_folds=snakemake.params.k_folds,
)
