"""One CTNet variant through every attribution method: localisation and deletion per scan, the
randomisation cascade, random networks' brain shares and the maps of figure 3's cases."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd
import torch

from htct.attribution.stage import AttributionSettings, attribute_variant, load_variant_arrays, write_variant
from htct.figures.cases import choose_cases
from htct.train.predict import load_trained_model

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)
torch.manual_seed(0)
inputs = snakemake.input
# The model folder (input: its threshold.json); after a k-fold training the configured CTNet's
# folder loads as the fold ensemble.
model = load_trained_model(Path(inputs.model).parent).model
arrays = load_variant_arrays(inputs.volumes, inputs.brain_mask, inputs.index, inputs.lesion_mask or None)
truth = (
    pd.read_csv(Path(inputs.truth) / "scans.tsv", sep="\t", dtype={"patient_id": str, "scan_id": str})
    if inputs.truth
    else None
)
scans = arrays.evaluation_scans(inputs.scans, truth)
cases = choose_cases(scans[scans["part"] == "test"], truth)
settings = AttributionSettings(**snakemake.params.settings)
result = attribute_variant(
    model,
    arrays.volumes,
    arrays.brain_masks,
    arrays.lesion_masks,
    scans,
    [row for _, row, _ in cases],
    settings,
)
write_variant(result, arrays, cases, snakemake.output)
