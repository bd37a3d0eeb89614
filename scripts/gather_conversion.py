"""Snakemake script of rule convert_dicom: the shards' NIfTIs and QC tables joined as one job writes them."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from htct.dicom import gather_conversion  # noqa: E402

gather_conversion(
    snakemake.input.nifti,
    snakemake.input.qc,
    snakemake.input.scans,
    snakemake.output.nifti,
    snakemake.output.qc,
    snakemake.output.scans,
)
