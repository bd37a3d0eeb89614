"""Consistency audit of the paper's own numbers, from the values file: results/paper/audit.md/.tsv."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from htct.paper import audit_markdown, audit_values, load_paper_values
from htct.report.html import html_document, markdown_html

values = load_paper_values(snakemake.input.values)
findings = audit_values(values)
findings.to_csv(snakemake.output.tsv, sep="\t", index=False)
markdown = audit_markdown(findings, values)
Path(snakemake.output.md).write_text(markdown, encoding="utf-8")
page = html_document("Audit of the paper's own numbers", markdown_html(markdown))
Path(snakemake.output.html).write_text(page, encoding="utf-8")
