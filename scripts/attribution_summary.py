"""The attribution verdicts (tidy TSVs and the table) and figure 3, drawn from the method that passes
the most tests on a variant that uses the infarct."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()


from htct.attribution.faithfulness import read_counterfactuals
from htct.attribution.stage import figure_choice, read_variant, summarise_variants
from htct.figures.attention import fig3_from_cases
from htct.tables import write_table
from htct.tables.attribution import attribution_table

# The workflow's messages only: INFO from htct, warnings from libraries (fontTools logs every subset).
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
log = logging.getLogger("htct")
log.setLevel(logging.INFO)
inputs, output, params = snakemake.input, snakemake.output, snakemake.params
variants = {kind: read_variant(inputs, k) for k, kind in enumerate(params.input_kinds)}
counterfactuals = read_counterfactuals(inputs.counterfactuals or None)
measured = {kind: variant.tables for kind, variant in variants.items()}
tables = summarise_variants(
    measured, counterfactuals, n_bootstrap=params.evaluate["n_bootstrap"], seed=params.evaluate["seed"]
)
for name in ("localisation", "uses_infarct", "sanity", "faithfulness", "verdicts"):
    tables[name].to_csv(output[name], sep="\t", index=False, na_rep="NA")
choice = figure_choice(tables["verdicts"], params.configured_input)
log.info("figure 3: %s", choice)
table, title = attribution_table(tables, choice)
log.info("attribution:\n%s", table.to_string())
write_table(table, Path(output.table).with_suffix(""), title, params.synthetic)
fig3_from_cases(
    variants[choice["input"]].cases, choice, tables, Path(output.fig3[0]).with_suffix(""), params.synthetic
)
