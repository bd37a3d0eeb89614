"""Snakemake script of rule synth_cohort: generate the synthetic DICOM cohort (htct.synth)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

from htct.synth.generate import CohortOutputs, generate_cohort  # noqa: E402

generate_cohort(
    CohortOutputs.from_rule(snakemake.output), **snakemake.params.synthetic, threads=snakemake.threads
)
