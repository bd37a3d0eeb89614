"""The quality-control tables (every DICOM series, every patient) as HTML pages of the report."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

import pandas as pd

from htct.tables.write import pretty_frame, table_html

titles = {
    "series": "Quality control: every DICOM series (and non-DICOM file) found, kept or excluded with the reason",
    "patients": "Quality control: every patient of the clinical sheet, included or excluded with the reason",
}
for name, title in titles.items():
    table = pd.read_csv(getattr(snakemake.input, name), sep="\t", dtype=str, keep_default_na=False)
    page = table_html(pretty_frame(table.set_index(table.columns[0])), title, snakemake.params.synthetic)
    Path(getattr(snakemake.output, name)).write_text(page, encoding="utf-8")
