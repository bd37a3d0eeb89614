"""Figure pages that the Snakemake report shows inline: a figure with its caption underneath and
its PDF as a download.

Snakemake's report opens an HTML result in the page but only offers a PNG, PDF, CSV or Markdown
result through its icons, with the caption behind an info button; a page of our own puts the
caption under the figure, as a journal does. Every page is one file with its images embedded as
data URIs and no scripts, so the report stays a single offline HTML.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from htct.report.html import html_document, notice_html


def rst_html(text: str) -> str:
    """reStructuredText (a caption of report/*.rst) as an HTML fragment, with docutils as the
    Snakemake report renders captions (the page shows the same text as the report's info panel)."""
    from docutils.core import publish_parts

    settings = {"report_level": 5, "halt_level": 5, "embed_stylesheet": False}
    return publish_parts(text, writer="html", settings_overrides=settings)["body"]


def data_uri(path: str | Path, mime: str) -> str:
    """The file as a base64 data URI."""
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


@dataclass(frozen=True)
class FigurePanel:
    """One figure of a page: its PNG (shown) and PDF (offered for download).

    Attributes:
        png: the raster figure.
        pdf: the vector figure.
        heading: shown above the figure when a page holds several (e.g. "Fold 2").
    """

    png: Path
    pdf: Path
    heading: str = ""


def figure_page(panels: Sequence[FigurePanel], title: str, caption_rst: str, synthetic: bool) -> str:
    """An HTML page of one figure (or of a few, e.g. one per cross-validation fold) with the caption
    under it and a download link to each PDF.

    Args:
        panels: the figures, in page order.
        title: the page title, e.g. "Figure 2. Confusion matrices".
        caption_rst: the caption (reStructuredText, as in report/*.rst).
        synthetic: adds the synthetic-cohort notice.

    Returns:
        The HTML document.
    """
    if not panels:
        raise ValueError(f"figure page {title!r} has no figure")
    caption = rst_html(caption_rst)
    parts = [f"<h1>{html.escape(title)}</h1>\n", notice_html(synthetic)]
    for k, panel in enumerate(panels):
        png, pdf = Path(panel.png), Path(panel.pdf)
        if panel.heading:
            parts.append(f"<h2>{html.escape(panel.heading)}</h2>\n")
        # The caption once, under the last figure: it describes them all.
        text = caption if k == len(panels) - 1 else ""
        parts.append(
            "<figure>\n"
            f'<img src="{data_uri(png, "image/png")}" alt="{html.escape(panel.heading or title)}">\n'
            f"<figcaption>\n{text}"
            f'<a class="download" href="{data_uri(pdf, "application/pdf")}" download="{html.escape(pdf.name)}">'
            f"Download the PDF ({html.escape(pdf.name)}, vector, for print)</a>\n"
            "</figcaption>\n</figure>\n"
        )
    return html_document(title, "".join(parts))
