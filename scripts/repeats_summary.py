"""The spread over a scope's repeats (rule repeats_summary): spread table and 'holds in k of n repeats'."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from pathlib import Path

import pandas as pd

from htct.paper import load_paper_values
from htct.paper.repeats import concat_tsv, convergence_table, holds_table, spread_pretty, spread_table
from htct.tables import write_table

inputs, out = snakemake.input, snakemake.output
metrics, claims = concat_tsv(inputs.metrics), concat_tsv(inputs.claims)
metrics.to_csv(out.metrics, sep="\t", index=False)
claims.to_csv(out.claims, sep="\t", index=False)
spread = spread_table(
    metrics,
    claims,
    pd.read_csv(inputs.headline, sep="\t"),
    load_paper_values(inputs.values),
    snakemake.params.models,
)
holds_table(claims).to_csv(out.holds, sep="\t", index=False)
convergence_table(inputs.epochs, inputs.thresholds, inputs.predictions, inputs.truth or None).to_csv(
    out.convergence, sep="\t", index=False
)
n = metrics["repeat"].nunique()
names = dict(zip(claims["claim_id"], claims["claim"], strict=False))
title = (
    f"Spread over {n} repeats (training seeds x patient-level resampled splits): median and 2.5-97.5th "
    "percentiles of the repeats; the headline run (configured split and seed) and its percentile among them"
)
write_table(
    spread_pretty(spread, names),
    Path(out.spread).with_suffix(""),
    title,
    snakemake.params.synthetic,
    tidy=spread,
)
