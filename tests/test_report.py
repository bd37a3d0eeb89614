"""The report's own pages (htct.report): figure pages and the front page's cohort statement."""

import base64
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from htct import SYNTHETIC_NOTICE
from htct.figures import decision_curve_figure
from htct.report.cohort import FRONT_PAGE_MARKER, cohort_statement, cohort_summary, front_page
from htct.report.pages import FigurePanel, figure_page, rst_html

REPO = Path(__file__).resolve().parents[1]


def _figure(tmp_path: Path) -> FigurePanel:
    y = np.array([0, 1, 0, 1, 1, 0])
    decision_curve_figure(y, {"ctnet": np.linspace(0.1, 0.9, 6)}, tmp_path / "dca", synthetic=False)
    return FigurePanel(tmp_path / "dca.png", tmp_path / "dca.pdf")


def test_figure_page_shows_the_png_with_its_caption_and_offers_the_pdf(tmp_path):
    panel = _figure(tmp_path)
    page = figure_page([panel], "Figure A2. Decision curves", "**Figure A2.** Net *benefit*.", synthetic=True)
    png = re.search(r'<img src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(png) == panel.png.read_bytes()
    pdf = re.search(r'href="data:application/pdf;base64,([^"]+)" download="dca.pdf"', page).group(1)
    assert base64.b64decode(pdf) == panel.pdf.read_bytes()
    # The caption (rst rendered to HTML) sits under the figure, inside its <figcaption>.
    caption = page[page.index("<figcaption>") : page.index("</figcaption>")]
    assert "<strong>Figure A2.</strong> Net <em>benefit</em>." in caption
    assert page.index("<img") < page.index("<figcaption>")
    assert SYNTHETIC_NOTICE.split(":")[0] in page and "<script" not in page


def test_figure_page_of_several_folds_has_one_caption(tmp_path):
    panel = _figure(tmp_path)
    panels = [FigurePanel(panel.png, panel.pdf, f"Fold {k}") for k in range(3)]
    page = figure_page(panels, "Training of CTNet", "The curves.", synthetic=False)
    assert page.count("<figure>") == 3 and page.count("The curves.") == 1
    assert [h for h in re.findall(r"<h2>(.*?)</h2>", page)] == ["Fold 0", "Fold 1", "Fold 2"]
    assert "SYNTHETIC" not in page
    with pytest.raises(ValueError, match="no figure"):
        figure_page([], "Empty", "x", synthetic=False)


def _cohort(synthetic: bool, readers: bool = True):
    clinical = pd.DataFrame({"patient_id": [f"P{k}" for k in range(6)], "label": [1, 0, 1, 0, 1, 0]})
    patients = pd.DataFrame({"patient_id": clinical["patient_id"], "status": ["included"] * 5 + ["excluded"]})
    scans = pd.DataFrame(
        {
            "scan_id": ["P0_scan1", "P0_scan2", "P1_scan1", "P2_scan1", "P3_scan1", "P4_scan1"],
            "patient_id": ["P0", "P0", "P1", "P2", "P3", "P4"],
            "part": ["test", "test", "train", "val", "train", "test"],
        }
    )
    sheet = (
        pd.DataFrame({"scan_id": ["P0_scan1"] * 3, "reader": ["A", "B", "C"], "p_ht": 0.5})
        if readers
        else None
    )
    data = {"synthetic": synthetic, "dicom_dir": "site/dicom", "clinical": "site/clinical.csv"}
    return cohort_summary(clinical, patients, scans, sheet, data, {"seed": 7})


def test_cohort_summary_counts_the_run():
    summary = _cohort(synthetic=False)
    assert (summary.patients_listed, summary.patients, summary.patients_ht) == (6, 5, 3)
    assert (summary.scans, summary.scans_ht, summary.test_patients, summary.test_scans) == (6, 4, 2, 3)
    assert summary.readers == 3 and summary.seed is None
    assert _cohort(synthetic=True).seed == 7


def test_cohort_statement_names_the_cohort_used():
    own = cohort_statement(_cohort(synthetic=False, readers=False))
    assert own.startswith("**Cohort: the site's own.**")
    assert (
        "``site/dicom``" in own and "``site/clinical.csv``" in own and "6 patients listed, 1 without" in own
    )
    assert "5 patients (3 with haemorrhagic transformation) and 6 scans" in own
    assert "no reader study" in own and "synthetic" not in own.lower() and "comparison" not in own
    synthetic = cohort_statement(_cohort(synthetic=True))
    assert synthetic.startswith("**Cohort: synthetic.**") and "seed 7" in synthetic
    assert "reader study with 3 readers" in synthetic and "**not** the paper's findings" in synthetic


def _render(rst: str, files: list) -> str:
    """As Snakemake renders the front page: Jinja (trim/lstrip blocks), then docutils."""
    from jinja2 import Environment

    links = "".join(f"\n.. _{f.target}: javascript:app.showResultInfo('{f.path}')\n" for f in files)
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(rst + links).render(files=files)
    return rst_html(text)


def test_front_page_links_the_paper_comparison_when_the_run_has_it():
    template = (REPO / "report/workflow.rst").read_text()
    assert FRONT_PAGE_MARKER in template
    rst = front_page(template, _cohort(synthetic=True))
    comparison = SimpleNamespace(
        path=Path("results/paper/comparison.html"), target="comparison.html", name="comparison.html"
    )
    other = SimpleNamespace(path=Path("results/tables/table1.html"), target="table1.html", name="table1.html")
    page = _render(rst, [other, comparison])
    assert "Cohort: synthetic." in page
    # the link opens the page itself (as a click in the report's list does), not its info panel
    assert (
        "javascript:app.setView({content:'html',contentPath:results['results/paper/comparison.html'].data_uri,"
        "resultPath:'results/paper/comparison.html'})"
    ) in page.replace("&#x27;", "'").replace("&#39;", "'")
    assert "showResultInfo('results/paper/comparison.html')\">comparison.html" not in page
    assert "System Message" not in page and "table1.html" not in page.split("Cohort")[1].split("</p>")[0]
    without = _render(rst, [other])
    assert "is not\npart of this run" in without and "System Message" not in without
    own = _render(front_page(template, _cohort(synthetic=False)), [comparison])
    assert "the site's own" in own.replace("’", "'") and "comparison" not in own
    with pytest.raises(ValueError, match="cohort statement"):
        front_page("no marker here", _cohort(synthetic=True))


def test_markdown_html_renders_the_audits_constructs():
    from htct.report.html import markdown_html

    page = markdown_html(
        "# Title\n\nSome **bold** `code` & text.\n\n| a | b |\n|---|---|\n| 1 | x<y |\n\n## Next\n"
    )
    assert page.startswith("<h1>Title</h1>")
    assert "<p>Some <strong>bold</strong> <code>code</code> &amp; text.</p>" in page
    assert (
        "<thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>x&lt;y</td></tr></tbody>"
        in page
    )
    assert "<h2>Next</h2>" in page and "---" not in page


def test_figure_page_title_from_the_figure_itself(tmp_path):
    """Figure 3's page is titled by the method actually drawn, which only the figure knows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from htct.figures.style import save_figure
    from htct.report.pages import png_title

    fig, _ = plt.subplots()
    title = "Figure 3. Occlusion of CTNet (full head input) on test scans"
    _, png = save_figure(fig, tmp_path / "fig3", title, synthetic=True)
    plt.close(fig)
    assert png_title(png) == title
    plain = tmp_path / "plain.png"
    plt.figure().savefig(plain)
    assert png_title(plain) == ""
