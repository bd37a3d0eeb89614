"""End to end: the tiny synthetic config through the whole DAG in a temporary directory."""

import base64
import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from htct.sheets import load_clinical
from htct.split import check_split
from htct.tables import table1_tidy
from htct.tables.reader_study import EVERY_SCAN_HT_LABEL

pytestmark = pytest.mark.slow


def test_dry_run_shows_the_chain(tiny_run):
    from tests.conftest import run_snakemake

    result = run_snakemake(tiny_run, "-n", "--forceall")
    position = {
        rule: result.stdout.find(f"rule {rule}:")
        for rule in ("synth_cohort", "convert_dicom", "preprocess", "split", "table1", "train", "evaluate")
    }
    assert min(position.values()) >= 0, position
    # A job is listed after the jobs it depends on.
    for before, after in (
        ("synth_cohort", "convert_dicom"),
        ("convert_dicom", "preprocess"),
        ("convert_dicom", "split"),
        ("split", "table1"),
        ("preprocess", "train"),
        ("train", "evaluate"),
    ):
        assert position[before] < position[after], (before, after)


def test_cohort_is_an_input_not_a_result(tiny_run):
    assert (tiny_run / "resources/synthetic/clinical.csv").is_file()
    assert not (tiny_run / "results/synthetic").exists()


def test_conversion_keeps_one_scan_per_study_and_lists_every_series(tiny_run):
    qc = pd.read_csv(tiny_run / "results/qc/series.tsv", sep="\t")
    scans = pd.read_csv(tiny_run / "results/qc/scans.tsv", sep="\t")
    truth = pd.read_csv(tiny_run / "resources/synthetic/truth/scans.tsv", sep="\t")
    assert set(qc["status"]) <= {"kept", "excluded"}
    assert (qc.loc[qc["status"] == "excluded", "reason"].fillna("") != "").all()
    assert sorted(scans["scan_id"]) == sorted(truth["scan_id"])
    for path in scans["nifti"]:
        assert (tiny_run / path).is_file()


def test_arrays_have_28_slices(tiny_run):
    volumes = np.load(tiny_run / "results/arrays/volumes.npy", mmap_mode="r")
    index = pd.read_csv(tiny_run / "results/arrays/index.tsv", sep="\t")
    assert volumes.shape[0] == len(index)
    assert volumes.shape[2:] == (28, 32, 32)
    assert volumes.dtype == np.float16
    assert 0.0 <= float(volumes.min()) and float(volumes.max()) <= 1.0
    lesions = np.load(tiny_run / "results/arrays/lesion_mask.npy", mmap_mode="r")
    assert lesions.shape == (len(index), 28, 32, 32)


def test_split_and_table1(tiny_run):
    split = pd.read_csv(tiny_run / "results/split/split.tsv", sep="\t", dtype={"patient_id": str})
    scans = pd.read_csv(tiny_run / "results/split/scans.tsv", sep="\t", dtype={"patient_id": str})
    check_split(split, scans)
    assert scans.groupby("patient_id")["part"].nunique().max() == 1
    clinical = load_clinical(tiny_run / "resources/synthetic/clinical.csv")
    written = pd.read_csv(tiny_run / "results/tables/table1.csv")  # tidy: no options needed
    expected = table1_tidy(clinical, split)
    pd.testing.assert_frame_equal(
        written[expected.columns].fillna({"level": ""}), expected, check_dtype=False
    )
    assert written["synthetic"].all()
    n_test = (split["part"] == "test").sum()
    assert f"Test (n={n_test})" in (tiny_run / "results/tables/table1.md").read_text()
    for suffix in ("md", "tex", "html"):
        assert "SYNTHETIC COHORT" in (tiny_run / f"results/tables/table1.{suffix}").read_text()


def test_models_evaluation_and_figures(tiny_run):
    for model in ("ctnet", "wozniak2023", "soundari2022"):
        predictions = pd.read_csv(tiny_run / f"results/predictions/{model}.tsv", sep="\t")
        assert set(predictions["split"]) == {"val", "test"}
        # The model folder says it was trained on the synthetic cohort (htct predict's notice).
        config = yaml.safe_load((tiny_run / f"results/models/{model}/config.yaml").read_text())
        assert config["provenance"]["synthetic"] is True
        assert config["provenance"]["cohort"]["n_scans"] == len(
            pd.read_csv(tiny_run / "results/qc/scans.tsv", sep="\t")
        )
        assert predictions["p_ht"].between(0, 1).all()
        assert predictions["threshold"].nunique() == 1
    table2 = pd.read_csv(tiny_run / "results/tables/table2.csv")
    raters = ["CTNet", *[f"Clinician {i}" for i in range(1, 9)], "Average (clinician)", EVERY_SCAN_HT_LABEL]
    assert list(dict.fromkeys(table2["Rater"])) == raters
    table3 = pd.read_csv(tiny_run / "results/tables/table3.csv")
    assert list(table3.columns) == ["Rater", "Metric", "estimate", "lower", "upper", "synthetic"]
    assert list(dict.fromkeys(table3["Metric"])) == ["Accuracy", "Sensitivity", "Specificity", "F1 (macro)"]
    # The tidy numbers are those of the evaluation (in %), for every table in results/tables/.
    metrics = pd.read_csv(tiny_run / "results/evaluation/metrics.tsv", sep="\t").set_index(
        ["rater", "metric"]
    )
    ctnet_accuracy = table3.query("Rater == 'CTNet' and Metric == 'Accuracy'").iloc[0]
    assert ctnet_accuracy["estimate"] == pytest.approx(100 * metrics.loc[("ctnet", "accuracy"), "value"])
    for csv in (tiny_run / "results/tables").glob("*.csv"):
        assert not csv.read_text().startswith("#"), csv
        pd.read_csv(csv)
    numbers = json.loads((tiny_run / "results/numbers.json").read_text())
    assert numbers["synthetic"] is True
    split = pd.read_csv(tiny_run / "results/split/scans.tsv", sep="\t")
    assert numbers["split"]["test"]["scans"] == (split["part"] == "test").sum()
    for figure in (
        "fig1_pipeline",
        "fig2_confusion",
        "fig3_attention",
        "supp_fig4_roc",
        "calibration",
        "decision_curve",
        "agreement_heatmap",
    ):
        for ext in ("pdf", "png"):
            assert (tiny_run / f"results/figures/{figure}.{ext}").stat().st_size > 1000, figure


def test_attribution_stage_follows_the_interface(tiny_run):
    localisation = pd.read_csv(tiny_run / "results/attribution/localisation.tsv", sep="\t")
    assert list(localisation.columns) == [
        "model", "input", "method", "metric", "n_scans", "estimate", "lower", "upper", "chance", "p_value", "verdict",
    ]  # fmt: skip
    assert set(localisation["input"]) == {"full_head", "skull_stripped"}
    assert set(localisation["method"]) == {"gradcam", "pooled_cam", "occlusion", "integrated_gradients"}
    assert set(localisation["verdict"]) <= {"pass", "fail", "not_applicable"}
    scans = pd.read_csv(tiny_run / "results/split/scans.tsv", sep="\t")
    evaluation = sorted(scans.loc[scans["part"].isin(["val", "test"]), "scan_id"])
    for kind in ("full_head", "skull_stripped"):  # the CAMs run on every validation and test scan
        per_scan = pd.read_csv(tiny_run / f"results/attribution/{kind}/scans.tsv", sep="\t")
        assert sorted(per_scan.loc[per_scan["method"] == "gradcam", "scan_id"]) == evaluation
    assert (localisation["n_scans"] <= len(evaluation)).all()
    uses = pd.read_csv(tiny_run / "results/attribution/uses_infarct.tsv", sep="\t")
    assert list(uses.columns) == ["model", "input", "uses_infarct", "reason"]
    # The synthetic run has the counterfactual test, so each variant's use of the infarct is decided.
    assert (tiny_run / "results/evaluation/counterfactuals.tsv").exists()
    assert set(uses["uses_infarct"].astype(str).str.lower()) <= {"true", "false"}
    table = pd.read_csv(tiny_run / "results/tables/attribution.csv")
    assert list(table["Model"].unique()) == ["CTNet (full head input)", "CTNet (skull-stripped input)"]
    assert list(table["Method"].unique()) == [
        "Grad-CAM (paper)",
        "Pooled CAM (exact)",
        "Occlusion",
        "Integrated Gradients",
    ]
    for kind in ("full_head", "skull_stripped"):
        timing = pd.read_csv(tiny_run / f"results/attribution/{kind}/timing.tsv", sep="\t")
        assert set(timing["method"]) == set(localisation["method"])


def test_paper_comparison_claims_and_audit(tiny_run):
    from tests.conftest import run_snakemake

    tidy = pd.read_csv(tiny_run / "results/paper/comparison.tsv", sep="\t")
    metrics = pd.read_csv(tiny_run / "results/evaluation/metrics.tsv", sep="\t").set_index(
        ["rater", "metric"]
    )
    ctnet_f1 = tidy.set_index("id").loc["text.ctnet.f1"]
    assert ctnet_f1["reproduced"] == pytest.approx(100 * metrics.loc[("ctnet", "f1"), "value"])
    assert np.isfinite(ctnet_f1["oracle"])  # synthetic run: the image-only oracle on the same scans
    assert "SYNTHETIC COHORT" in (tiny_run / "results/paper/comparison.md").read_text()
    claims = pd.read_csv(tiny_run / "results/paper/claims.tsv", sep="\t").set_index("claim_id")
    assert set(claims["verdict"]) <= {"holds", "does not hold", "undecided"}
    # The attention claim is decided on the test scans' per-scan values (results/attribution/full_head/scans.tsv).
    assert "on the test scans" in claims.loc["attention_on_infarct", "test"]
    mrmc = pd.read_csv(tiny_run / "results/paper/mrmc.tsv", sep="\t")
    assert list(mrmc["analysis"]) == ["RRRC", "RRFC", "FRRC"]
    audit = (tiny_run / "results/paper/audit.md").read_text()
    assert "# Audit of the paper's own numbers" in audit and "45/61 = 73.77%" in audit
    assert "Unit" in pd.read_csv(tiny_run / "results/tables/tests.csv").columns
    # Test scans with a clearly enriched map make the claim hold; only paper_comparison reruns (the
    # attribution summary, which also reads the file, is not allowed to), and the file's bytes and
    # time are restored after.
    per_scan = tiny_run / "results/attribution/full_head/scans.tsv"
    real, times = per_scan.read_bytes(), per_scan.stat()
    scans = pd.read_csv(per_scan, sep="\t", dtype={"patient_id": str, "scan_id": str})
    test = scans["part"] == "test"
    scans.loc[test, "visible"], scans.loc[test, "enrichment"] = True, 4.0 + scans.loc[test, "row"] % 3
    scans.to_csv(per_scan, sep="\t", index=False)
    rerun = (
        "--forcerun",
        "paper_comparison",
        "--allowed-rules",
        "paper_comparison",
        "--rerun-triggers",
        "mtime",
    )
    try:
        run_snakemake(tiny_run, *rerun)
        claims = pd.read_csv(tiny_run / "results/paper/claims.tsv", sep="\t").set_index("claim_id")
        assert claims.loc["attention_on_infarct", "verdict"] == "holds"
    finally:
        per_scan.write_bytes(real)
        os.utime(per_scan, ns=(times.st_atime_ns, times.st_mtime_ns))
        run_snakemake(tiny_run, *rerun)


def test_paper_tables_in_the_papers_layout(tiny_run):
    # rule paper_tables: one report page per table, the paper's cells beside this run's, one oracle row
    pages = {n: (tiny_run / f"results/paper/table{n}_layout.html").read_text() for n in (1, 2, 3)}
    assert all("SYNTHETIC COHORT" in page for page in pages.values())
    assert "52 of the 52 cells the stored page prints in Table 2" in pages[2]
    assert (
        "Clinician 8" in pages[2]
        and "Average (clinician)" in pages[2]
        and pages[2].count("Oracle (image-only") == 2
    )
    assert "Marcin Woz nia" in pages[3] and "351 (74.05)" in pages[1]
    assert "85 of the 85 cells" in (tiny_run / "results/paper/comparison.html").read_text()


def report_data(html: str) -> dict:
    """The report's embedded data: results (path -> entry), categories, and the front page's HTML."""
    data = {}
    for name in ("results", "categories"):
        match = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', html, flags=re.S)
        data[name] = json.loads(match.group(1))
    match = re.search(
        r'<script id="workflow-desc">\s*var workflow_desc = (.*?);\s*</script>', html, flags=re.S
    )
    data["front_page"] = json.loads(match.group(1))
    return data


def item_html(entry: dict) -> str:
    """The HTML page a report item shows, decoded from its data URI."""
    header, payload = entry["data_uri"].split(",", 1)
    assert header.startswith("data:text/html") and header.endswith(";base64"), header
    return base64.b64decode(payload).decode("utf-8")


def items(data: dict, category: str) -> list[str]:
    return [path for paths in data["categories"][category].values() for path in paths]


def test_report_shows_every_table_and_figure_in_the_page(tiny_run):
    from tests.conftest import run_snakemake

    run_snakemake(tiny_run, "--report", "results/report.html")
    html = (tiny_run / "results/report.html").read_text(errors="replace")
    assert "synthetic cohort" in html.lower()
    # Offline: no script or stylesheet is fetched from the network.
    assert not re.search(r'<(script|link)[^>]*(src|href)="https?://', html)
    data = report_data(html)
    assert set(data["categories"]) == {"Tables", "Figures", "Quality control", "Training", "Reproduction"}
    tables = items(data, "Tables") + items(data, "Quality control")
    expected = {
        f"results/tables/{t}.html"
        for t in ("table1", "table2", "table3", "agreement", "tests", "attribution")
    }
    assert expected | {"results/qc/series.html", "results/qc/patients.html"} <= set(tables)
    for path in tables:
        page = item_html(data["results"][path])  # shown inline: a page, not a download
        assert "<table>" in page and page.count("<tr>") >= 2 and "<caption>" in page, path
        assert "SYNTHETIC COHORT" in page, path
    table2 = item_html(data["results"]["results/tables/table2.html"])
    tidy = pd.read_csv(tiny_run / "results/tables/table2.csv")
    auc = tidy.query("Rater == 'CTNet' and Metric == 'AUC'").iloc[0]
    assert f"{auc['estimate']:.2f} ({auc['lower']:.2f}–{auc['upper']:.2f})" in table2

    figures = items(data, "Figures")
    assert sorted(figures) == sorted(
        f"results/report/figures/{f}.html"
        for f in ("fig1_pipeline", "fig2_confusion", "fig3_attention", "supp_fig4_roc", "calibration")
        + ("decision_curve", "agreement_heatmap")
    )  # one item per figure: no PNG/PDF pairs listed by path
    for path in figures + items(data, "Training"):
        entry = data["results"][path]
        page = item_html(entry)
        assert page.count('<img src="data:image/png;base64,') >= 1, path
        assert 'href="data:application/pdf;base64,' in page and "download=" in page, path
        assert re.search(r"<figcaption>\s*<p>\S", page), path  # the caption under the figure
        assert entry["labels"], path  # listed by name, not by file path
    assert {data["results"][p]["labels"]["model"] for p in items(data, "Training")} == {
        "CTNet",
        "Woźniak et al. (2023)",
        "Soundari et al. (2022)",
    }
    assert "results/numbers.html" in items(data, "Reproduction")
    reproduction = " ".join(items(data, "Reproduction"))
    for name in ("comparison", "claims", "audit", "counterfactuals"):
        assert name in reproduction, name


def test_report_front_page_states_the_synthetic_cohort(tiny_run):
    from tests.conftest import run_snakemake

    report = tiny_run / "results/report_front.html"
    run_snakemake(tiny_run, "--report", str(report.relative_to(tiny_run)))
    front = report_data(report.read_text())["front_page"]
    patients = pd.read_csv(tiny_run / "results/qc/patients.tsv", sep="\t")
    scans = pd.read_csv(tiny_run / "results/split/scans.tsv", sep="\t")
    n_patients = (patients["status"] == "included").sum()
    assert "Cohort: synthetic" in front and "the site" not in front
    assert f"{n_patients} patients" in front and f"{len(scans)} scans" in front
    assert "not</strong> the paper" in front
    test = scans[scans["part"] == "test"]
    assert f"test set {test['patient_id'].nunique()} patients, {len(test)} scans" in front
    assert "reader study with 8 readers" in front
    # The run made the paper-vs-reproduction sheet (rules/paper.smk): the front page links it.
    assert "The paper's own numbers beside this run's" in front.replace("&#x27;", "'").replace("&#39;", "'")
    assert "is not\npart of this run" not in front.replace("</span>", "")
    # ... with a link that opens the page, not its info panel
    assert "javascript:app.setView({content:" in front.replace("&#x27;", "'").replace("&#39;", "'")


def test_report_front_page_states_a_sites_own_cohort(tiny_run, tmp_path):
    """The statement follows the config, not prose that reads the same for both cohorts.

    Honest about what it checks: the tiny run's files are copied out of resources/synthetic/ and
    configured as a site's own cohort (`data.synthetic: false`), then only the front page is rebuilt
    (mtime triggers: the copies keep their times, so no other job reruns) and the report is made.
    The other items are still the synthetic run's; the own-cohort DAG itself is tested by the
    own-cohort end-to-end test (issue 14).
    """
    from tests.conftest import run_snakemake

    own = tmp_path / "own"
    shutil.copytree(tiny_run, own, symlinks=True)
    site = own / "site"
    site.mkdir()
    for name in ("dicom", "clinical.csv", "readers.csv"):
        source = own / "resources/synthetic" / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, site / name)
    (own / "own.yaml").write_text(
        "data:\n  synthetic: false\n  dicom_dir: site/dicom\n  clinical: site/clinical.csv\n"
        "  readers: site/readers.csv\n  lesion_masks: ''\n  truth: ''\n"
    )
    configs = ("tests/config/tiny.yaml", "own.yaml")
    run_snakemake(
        own,
        "--rerun-triggers",
        "mtime",
        "--forcerun",
        "front_page",
        "--allowed-rules",
        "front_page",
        "--",
        "results/report/workflow.rst",
        configfiles=configs,
    )
    run_snakemake(own, "--report", "results/report.html", configfiles=configs)
    front = report_data((own / "results/report.html").read_text())["front_page"]
    patients = pd.read_csv(own / "results/qc/patients.tsv", sep="\t")
    scans = pd.read_csv(own / "results/split/scans.tsv", sep="\t")
    assert "Cohort: the site’s own" in front or "Cohort: the site's own" in front
    assert "synthetic" not in front.lower()
    assert "site/dicom" in front and "site/clinical.csv" in front
    assert f"{(patients['status'] == 'included').sum()} patients" in front and f"{len(scans)} scans" in front
    assert "comparison" not in front  # the paper-vs-reproduction sheet is for synthetic runs
