"""Snakemake script of rules convert_dicom_shard and counterfactual_convert: DICOM tree -> NIfTIs + QC tables.

One shard of the cohort's patients (params shard, n_shards; its files from input index) or, without them,
the whole tree (htct.dicom).
"""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from htct.dicom import convert_tree  # noqa: E402

convert_tree(
    snakemake.input.dicom,
    snakemake.input.clinical,
    snakemake.output.nifti,
    snakemake.output.qc,
    snakemake.output.scans,
    threads=snakemake.threads,
    shard=snakemake.params.get("shard", 0),
    n_shards=snakemake.params.get("n_shards", 1),
    shard_index=snakemake.input.get("index") or None,  # rule index_dicom's, with more than one shard
    **snakemake.params.convert,  # config["convert"]: min_slices, gantry_tilt, max_spacing_deviation_mm
)
