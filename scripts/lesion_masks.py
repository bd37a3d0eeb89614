"""Bring the synthetic cohort's lesion masks into the arrays' crop (htct.preprocess.build_lesion_masks)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from htct.preprocess import build_lesion_masks

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
params = snakemake.params.preprocess
build_lesion_masks(
    snakemake.input.index,
    snakemake.input.scans,
    snakemake.params.masks_dir,  # input.masks may be the synthetic truth folder that contains it
    snakemake.output.lesion_mask,
    n_slices=params["n_slices"],
    slice_thickness_mm=params["slice_thickness_mm"],
    size=params["size"],
)
