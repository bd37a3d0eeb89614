"""Tables 1-3 in the paper's layout, each cell the paper's value beside this run's: results/paper/table*_layout.html."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.paper.layout import layout_html, paper_layout
from htct.paper.values import load_paper_values

values = load_paper_values(snakemake.input.values)
reproduced = pd.read_csv(snakemake.input.comparison, sep="\t")
for section, output in (
    ("Table 1", snakemake.output.table1),
    ("Table 2", snakemake.output.table2),
    ("Table 3", snakemake.output.table3),
):
    page = layout_html(
        paper_layout(values, reproduced, section), snakemake.params.synthetic, values.paper["citation"]
    )
    Path(output).write_text(page, encoding="utf-8")
