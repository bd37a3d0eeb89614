"""The spread figure (rule repeats_figure): one point per repeat, the headline run and the paper marked."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from pathlib import Path

import pandas as pd

from htct.figures.repeats import spread_figure
from htct.names import display_name

model = snakemake.params.model
spread_figure(
    pd.read_csv(snakemake.input.metrics, sep="\t"),
    pd.read_csv(snakemake.input.spread),
    pd.read_csv(snakemake.input.claims, sep="\t"),
    model,
    display_name(model),
    Path(snakemake.output.png).with_suffix(""),
    snakemake.params.synthetic,
)
