"""Snakemake script of rule index_dicom: every DICOM header read once -> the shard of every file (htct.dicom)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from htct.dicom import plan_shards  # noqa: E402

plan_shards(
    snakemake.input.dicom,
    snakemake.input.clinical,
    snakemake.output.index,
    snakemake.params.n_shards,
    threads=snakemake.threads,
)
