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


def png_title(path: str | Path) -> str:
    """The title a figure stored in its PNG (:func:`htct.figures.style.save_figure`'s ``Title``), without
    the synthetic-cohort note (the page states it on its own); "" when it has none.

    A figure whose content is decided while it is drawn (figure 3 shows the attribution method that
    passes the most tests) names that content in its title; the page takes it from there rather than
    from a name fixed when the workflow is planned.
    """
    # The PNG's text chunks, read with the standard library (Pillow would be one more pin of the
    # plots env for a few lines): length, type, data, CRC each. tEXt: "Title\0<latin-1 text>"; iTXt
    # (text beyond latin-1, e.g. an em dash): "Title\0", compression flag and method, language\0,
    # translated keyword\0, UTF-8 text (matplotlib does not compress it).
    data, title, at = Path(path).read_bytes(), "", 8
    while at + 8 <= len(data):
        length, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        chunk = data[at + 8 : at + 8 + length]
        if kind == b"tEXt" and chunk.startswith(b"Title\0"):
            title = chunk[6:].decode("latin-1")
            break
        if kind == b"iTXt" and chunk.startswith(b"Title\0") and chunk[6] == 0:
            title = chunk[8:].split(b"\0", 2)[2].decode("utf-8")
            break
        if kind == b"IDAT":  # matplotlib writes its text chunks before the image data
            break
        at += 12 + length
    return title.split(" — Synthetic cohort")[0].strip()


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
