"""Snakemake script of rule preprocess: the shards' arrays joined in scans.tsv's order (htct.preprocess)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")

from htct.preprocess import ArrayOutputs, gather_arrays  # noqa: E402

gather_arrays(
    snakemake.input.scans,
    [ArrayOutputs.of(folder) for folder in snakemake.params.shards],
    ArrayOutputs.from_rule(snakemake.output),
)
