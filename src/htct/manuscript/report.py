"""The reproduction report: Methods and Results written from the run's outputs (Jinja2), as HTML and PDF.

The template (``templates/report.html.j2``) holds words only: every number comes from a
:class:`~htct.manuscript.values.Value` and is printed by the ``n`` filter as an element that names
its file, its place in the file and the rule that made it, and links to the file.
"""

from __future__ import annotations

import html
import json
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from htct.manuscript import sources
from htct.manuscript.values import Outputs, Value

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"


def link(file: str, page: str) -> str:
    """The href of an output `file` (``results/...``) from a page written at `page` (``results/...``)."""
    return posixpath.relpath(file, posixpath.dirname(page))


def number_element(value: Value | None, page: str) -> Markup:
    """A value as the report prints it: a link to its file carrying the file, selector, column and rule."""
    if value is None:
        return Markup('<span class="notrun">not run</span>')
    attributes = {
        "class": "num" if value.kind != "text" else "txt",
        "href": link(value.file, page),
        "data-file": value.file,
        "data-rule": value.rule,
        "data-kind": value.kind,
        "data-where": json.dumps(dict(value.where), sort_keys=True),
        "data-column": value.column,
        "data-scale": repr(value.scale),
        "data-decimals": str(value.decimals),
        "data-value": value.value if isinstance(value.value, str) else repr(value.value),
        "title": f"{value.file}, rule {value.rule}",
    }
    rendered = " ".join(f'{key}="{html.escape(str(item), quote=True)}"' for key, item in attributes.items())
    return Markup(f"<a {rendered}>{html.escape(value.text)}</a>")


def environment(page: str) -> jinja2.Environment:
    """The Jinja2 environment of the report: autoescape, strict undefined, the ``n`` filter."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["n"] = lambda value: number_element(value, page)
    env.filters["href"] = lambda file: link(file, page)
    return env


def collect(out: Outputs, models: Sequence[str], synthetic: bool, k_folds: int = 0) -> dict[str, Any]:
    """Everything the template prints, read through :mod:`htct.manuscript.sources`."""
    reference = models[0]
    readers = sources.readers(out)
    return {
        "synthetic": synthetic,
        "notice": out.json(sources.NUMBERS, "notice") if synthetic else None,
        "cohort": sources.cohort(out),
        "split": sources.split(out),
        "preprocessing": sources.preprocessing(out),
        "models": sources.models(out, models, k_folds),
        "reference": sources.model_label(out, reference),
        "reference_auc": sources.test_metric(out, reference, "auc"),
        "readers": readers,
        "baseline": sources.table1(out),
        "clinicians": sources.interval_table(out, sources.TABLE2),
        "compared": sources.interval_table(out, sources.TABLE3),
        "preprocess_file": sources.PREPROCESS,
        "claims_file": sources.CLAIMS,
        "tests": sources.generic_table(out, sources.TESTS),
        "comparison": sources.comparison(out),
        "layouts": {part: sources.paper_layout(out, part) for part in sources.LAYOUTS},
        "comparison_file": sources.COMPARISON,
        "clinical": sources.clinical(out),
        "mrmc": sources.generic_table(out, sources.MRMC) if readers else None,
        "claims": sources.claims(out),
        "audit": sources.audit(out),
        "repeats": sources.generic_table(out, sources.REPEATS),
        "convergence": sources.generic_table(out, sources.CONVERGENCE),
        "counterfactuals": sources.generic_table(out, sources.COUNTERFACTUALS),
        "attribution": sources.generic_table(out, sources.ATTRIBUTION),
        "files": sorted({file: rule for file, rule in out.rules.items() if out.exists(file)}.items()),
    }


def render_html(context: Mapping[str, Any], page: str = "results/manuscript/report.html") -> str:
    """The report as one HTML page (no script, nothing fetched)."""
    return environment(page).get_template(TEMPLATE).render(**context)


def write_pdf(html_text: str, pdf: Path, base_url: Path) -> None:
    """The same page as PDF, through WeasyPrint (links to the files kept as PDF links)."""
    import weasyprint  # heavy (cffi, pango): imported only where a PDF is written

    weasyprint.HTML(string=html_text, base_url=str(base_url)).write_pdf(str(pdf))


def write_report(
    root: Path,
    models: Sequence[str],
    synthetic: bool,
    html_path: Path,
    pdf_path: Path | None = None,
    rules: Mapping[str, str] | None = None,
    k_folds: int = 0,
) -> str:
    """Read the run's outputs under `root`, write the report's HTML (and PDF), return the HTML.

    Args:
        root: the workflow's directory (paths of the outputs are relative to it).
        models: the configured models, the reference model first.
        synthetic: whether the run used the synthetic cohort.
        html_path: where the HTML goes (under `root`, so that its links reach the files).
        pdf_path: where the PDF goes; None for none.
        rules: output file -> the rule that made it (the DAG's); the defaults of
            :func:`htct.manuscript.sources.rules_for` when None.
        k_folds: the run's split.k_folds.
    """
    out = Outputs(root, rules or sources.rules_for(models, k_folds))
    page = Path(html_path).resolve().relative_to(Path(root).resolve()).as_posix()
    text = render_html(collect(out, models, synthetic, k_folds), page)
    Path(html_path).write_text(text, encoding="utf-8")
    if pdf_path is not None:
        write_pdf(text, Path(pdf_path), Path(html_path).resolve().parent)
    return text
