"""The TRIPOD+AI checklist of this run: results/manuscript/tripod_ai.md and .html."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from htct.manuscript.tripod import write_checklist

found = write_checklist(
    Path(snakemake.input.checklist),
    Path.cwd(),  # the outputs' paths are relative to the workflow's directory, where jobs run
    snakemake.params.reference,
    Path(snakemake.output.md),
    Path(snakemake.output.html),
    snakemake.params.synthetic,
)
print(f"TRIPOD+AI items: {found}", file=sys.stderr)
