"""One CTNet variant through every attribution method: localisation and deletion per scan, the
randomisation cascade, random networks' brain shares and the maps of figure 3's cases."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import torch

from htct.attribution.stage import AttributionSettings, load_variant_arrays, run_variant, write_variant
from htct.train.predict import load_trained_model

# The workflow's messages only: INFO from htct, warnings from libraries (fontTools logs every subset).
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
logging.getLogger("htct").setLevel(logging.INFO)
torch.set_num_threads(snakemake.threads)
torch.manual_seed(0)
inputs = snakemake.input
# The model folder (input: its threshold.json); after a k-fold training the configured CTNet's
# folder loads as the fold ensemble.
model = load_trained_model(Path(inputs.model).parent).model
arrays = load_variant_arrays(inputs.volumes, inputs.brain_mask, inputs.index, inputs.lesion_mask or None)
settings = AttributionSettings(**snakemake.params.settings)
result, cases = run_variant(model, arrays, inputs.scans, inputs.truth or None, settings)
write_variant(result, arrays, cases, snakemake.output)
