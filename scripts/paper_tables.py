"""Tables 1-3 in the paper's layout, each cell the paper's value beside this run's: results/paper/table*_layout.html."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.paper.layout import layout_html, layout_table, paper_layout
from htct.paper.values import load_paper_values

values = load_paper_values(snakemake.input.values)
reproduced = pd.read_csv(snakemake.input.comparison, sep="\t")
for section, output, tidy in (
    ("Table 1", snakemake.output.table1, snakemake.output.table1_tsv),
    ("Table 2", snakemake.output.table2, snakemake.output.table2_tsv),
    ("Table 3", snakemake.output.table3, snakemake.output.table3_tsv),
):
    layout = paper_layout(values, reproduced, section)
    page = layout_html(layout, snakemake.params.synthetic, values.paper["citation"])
    Path(output).write_text(page, encoding="utf-8")
    layout_table(layout).assign(synthetic=snakemake.params.synthetic).to_csv(tidy, sep="\t", index=False)
