"""The skeleton every report page shares (figure, table and numbers pages): one HTML5 document
with its style inline, no scripts and no external files, so the report stays one offline file."""

from __future__ import annotations

import html
import re

from htct import SYNTHETIC_NOTICE

PAGE_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1e293b;
       margin: 1.5rem; line-height: 1.45; }
h1 { font-size: 1.1rem; margin: 0 0 0.75rem; }
h2 { font-size: 0.95rem; margin: 1.25rem 0 0.5rem; }
figure { margin: 0 0 1.5rem; max-width: 60rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #e2e8f0; }
figcaption, .caption { font-size: 0.9rem; max-width: 60rem; }
figcaption p, .caption p { margin: 0.4rem 0; }
a.download { display: inline-block; margin-top: 0.25rem; font-size: 0.85rem; }
table { border-collapse: collapse; font-size: 0.82rem; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; font-size: 1rem; padding-bottom: 0.5rem; }
th, td { padding: 0.25rem 0.5rem; border-bottom: 1px solid #e2e8f0; white-space: nowrap; }
thead th { border-bottom: 2px solid #334155; text-align: left; vertical-align: bottom; }
td.number, th.number { text-align: right; }
td.group { font-weight: 600; }
td.prose { white-space: normal; min-width: 16rem; max-width: 34rem; }
td.wrap { white-space: normal; min-width: 9rem; max-width: 34rem; overflow-wrap: anywhere; }
tbody tr:hover { background: #f1f5f9; }
tr.noted td { border-bottom: none; }
tr.note td { white-space: normal; font-size: 0.78rem; color: #475569; padding-bottom: 0.6rem; }
.notice { color: #b45309; font-weight: 600; max-width: 60rem; }
"""


PROSE_CHARACTERS = 60
"""A table cell longer than this makes its column one that wraps (``td.prose``)."""
WRAP_CHARACTERS = 30
"""In the Markdown documents' tables (the audit), a cell longer than this makes its column wrap."""


def html_document(title: str, body: str) -> str:
    """A complete HTML5 document with the report pages' style (no scripts, no external files)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


def notice_html(synthetic: bool) -> str:
    """The synthetic-cohort notice as a paragraph, or nothing for a site's own data."""
    return f'<p class="notice">{html.escape(SYNTHETIC_NOTICE)}</p>\n' if synthetic else ""


def _inline(text: str) -> str:
    """Escape, then **bold** and `code` (the only inline markup our Markdown writers produce)."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def markdown_html(markdown: str) -> str:
    """HTML for the Markdown this project writes itself (headings, paragraphs, pipe tables, bold,
    code): the audit of the paper's numbers. Not a general Markdown renderer; it saves a dependency
    for documents whose every construct is known."""
    out, table = [], []

    def flush_table() -> None:
        if table:
            rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table]
            header, body = rows[0], rows[2:]
            # Columns of sentences or of lists wrap; else the audit's tables run past the report's
            # width (they have several such columns, hence the lower bar and narrower minimum).
            wraps = [
                any(len(row[k]) > WRAP_CHARACTERS for row in body if k < len(row)) for k in range(len(header))
            ]
            cell = ['<td class="wrap">' if wrap else "<td>" for wrap in wraps]
            out.append(
                "<table><thead><tr>"
                + "".join(f"<th>{_inline(c)}</th>" for c in header)
                + "</tr></thead><tbody>"
                + "".join(
                    "<tr>" + "".join(f"{cell[k]}{_inline(c)}</td>" for k, c in enumerate(row)) + "</tr>"
                    for row in body
                )
                + "</tbody></table>"
            )
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        heading = re.match(r"(#{1,3}) (.*)", line)
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush_table()
    return "\n".join(out) + "\n"
