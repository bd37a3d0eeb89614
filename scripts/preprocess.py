"""Snakemake script of rule preprocess_shard: one shard of the patients' scans into arrays (htct.preprocess)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from htct.preprocess import ArrayOutputs, build_arrays

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
params = snakemake.params.preprocess
build_arrays(
    snakemake.input.scans,
    ArrayOutputs.from_rule(snakemake.output),
    n_slices=params["n_slices"],
    slice_thickness_mm=params["slice_thickness_mm"],
    size=params["size"],
    windows=[tuple(window) for window in params["windows"]],
    skull_strip=params["skull_strip"],
    threads=snakemake.threads,
    shard=snakemake.params.shard,
    n_shards=snakemake.params.n_shards,
)
