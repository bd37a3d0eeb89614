"""The paper beside the run: results/paper/comparison.*, claims.* and mrmc.tsv."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.paper.claims import CLAIM_NOTES
from htct.paper.comparison import comparison_html
from htct.paper.repeats import claims_with_repeats
from htct.paper.run import compare_with_run
from htct.tables import write_table

inputs, out = snakemake.input, snakemake.output
result = compare_with_run(
    inputs.values,
    inputs.metrics,
    inputs.test_scans,
    inputs.numbers,
    inputs.clinical,
    inputs.split,
    inputs.truth or None,
    inputs.localisation,
    snakemake.params.models,
    snakemake.params.evaluate,
    snakemake.params.paper,
    inputs.attribution_scans,
)
if inputs.holds:  # the default run's repeats (rules/repeats.smk): "holds in k of n repeats"
    result["claims"], result["claims_table"] = claims_with_repeats(
        result["claims"], result["claims_table"], pd.read_csv(inputs.holds, sep="\t")
    )
result["reproduced"].to_csv(out.comparison_tsv, sep="\t", index=False)
result["claims"].to_csv(out.claims_tsv, sep="\t", index=False)
(result["mrmc"] if result["mrmc"] is not None else pd.DataFrame(columns=["analysis"])).to_csv(
    out.mrmc, sep="\t", index=False
)
for table, output, title, notes in (
    ("comparison", out.comparison, result["comparison_title"], ()),
    # The claims' long texts go under each row on the page (as columns they overflow the report).
    ("claims_table", out.claims, "The paper's claims, decided on this run", CLAIM_NOTES),
):
    write_table(
        result[table], Path(output).with_suffix(""), title, snakemake.params.synthetic, html_notes=notes
    )
# The comparison's page for the report: numbers only in columns, sources under the quantity (fits the panel)
Path(out.comparison).write_text(
    comparison_html(result["comparison"], result["comparison_title"], snakemake.params.synthetic),
    encoding="utf-8",
)
