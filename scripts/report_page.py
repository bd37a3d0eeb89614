"""A report page: the figure(s) as PNG with the caption under them and each PDF as a download."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.report.pages import FigurePanel, figure_page, png_title

headings = list(snakemake.params.headings) or [""] * len(snakemake.input.png)
panels = [
    FigurePanel(Path(png), Path(pdf), heading)
    for png, pdf, heading in zip(snakemake.input.png, snakemake.input.pdf, headings, strict=True)
]
caption = Path(snakemake.input.caption).read_text(encoding="utf-8")
# No title given: the figure's own (figure 3 names the method it was drawn with only when drawn).
title = snakemake.params.title or png_title(panels[0].png)
page = figure_page(panels, title, caption, snakemake.params.synthetic)
Path(snakemake.output.page).write_text(page, encoding="utf-8")
