"""The skeleton every report page shares (figure, table and numbers pages): one HTML5 document
with its style inline, no scripts and no external files, so the report stays one offline file."""

from __future__ import annotations

import html

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
tbody tr:hover { background: #f1f5f9; }
.notice { color: #b45309; font-weight: 600; max-width: 60rem; }
"""


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
