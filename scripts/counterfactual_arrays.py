"""Preprocess the counterfactual scans with their originals' crops (htct.preprocess.build_arrays_like)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")

from htct.preprocess import ArrayOutputs, build_arrays_like  # noqa: E402

reference = snakemake.input
build_arrays_like(
    snakemake.input.scans,
    ArrayOutputs(
        Path(reference.reference_volumes),
        Path(reference.reference_mask),
        Path(reference.reference_index),
        Path(reference.reference_parameters),
    ),
    ArrayOutputs.from_rule(snakemake.output),
    threads=snakemake.threads,
)
