"""Preprocess the counterfactual scans with their originals' crops (htct.preprocess.build_arrays_like)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")

from htct.preprocess import build_arrays_like  # noqa: E402

build_arrays_like(
    snakemake.input.scans,
    Path(snakemake.input.reference_index).parent,
    Path(snakemake.output.volumes).parent,
    threads=snakemake.threads,
)
