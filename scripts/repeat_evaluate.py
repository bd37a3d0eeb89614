"""One repeat's test-set evaluation (rule repeat_evaluate): Table 2/3 metrics, the oracle's, the claims."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from htct.paper.repeats import evaluate_repeat

evaluate_repeat(
    snakemake.input.predictions,
    snakemake.params.models,
    snakemake.input.readers or None,
    snakemake.input.scans,
    snakemake.input.truth or None,
    snakemake.params.evaluate,
    snakemake.params.paper,
    snakemake.wildcards.repeat,
    snakemake.wildcards.kind,
    snakemake.output,
)
