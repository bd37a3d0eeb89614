"""End to end: the tiny synthetic config through the whole DAG in a temporary directory."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from htct.sheets import load_clinical
from htct.split import check_split
from htct.tables import table1

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
    written = pd.read_csv(tiny_run / "results/tables/table1.csv", comment="#")
    expected = table1(clinical, split).reset_index()
    assert list(written.columns[2:]) == list(expected.columns[2:])
    assert written.iloc[:, 2:].astype(str).values.tolist() == expected.iloc[:, 2:].astype(str).values.tolist()
    n_test = (split["part"] == "test").sum()
    assert f"Test (n={n_test})" in written.columns
    for suffix in ("csv", "md", "tex"):
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
    table2 = pd.read_csv(tiny_run / "results/tables/table2.csv", comment="#")
    assert list(table2["Rater"]) == ["CTNet", *[f"Clinician {i}" for i in range(1, 9)], "Average (clinician)"]
    table3 = pd.read_csv(tiny_run / "results/tables/table3.csv", comment="#")
    assert list(table3.columns) == ["Rater", "Accuracy", "Sensitivity", "Specificity", "F1 (macro)"]
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
    ):
        for ext in ("pdf", "png"):
            assert (tiny_run / f"results/figures/{figure}.{ext}").stat().st_size > 1000, figure
    attention = pd.read_csv(tiny_run / "results/tables/attention.csv", comment="#")
    assert list(attention["Model"]) == ["CTNet (full head input)", "CTNet (skull-stripped input)"]


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
    assert claims.loc["attention_on_infarct", "detail"] == "no attribution results"
    mrmc = pd.read_csv(tiny_run / "results/paper/mrmc.tsv", sep="\t")
    assert list(mrmc["analysis"]) == ["RRRC", "RRFC", "FRRC"]
    audit = (tiny_run / "results/paper/audit.md").read_text()
    assert "# Audit of the paper's own numbers" in audit and "45/61 = 73.77%" in audit
    assert "Unit" in pd.read_csv(tiny_run / "results/tables/tests.csv", comment="#").columns
    # The attribution stage's table, when present, decides the attention claim.
    localisation = tiny_run / "results/attribution/localisation.tsv"
    localisation.parent.mkdir(parents=True, exist_ok=True)
    row = "ctnet\tfull_head\tgradcam\tlesion_enrichment\t10\t3.0\t2.0\t4.0\t1.0\t0.01\tpass\n"
    header = "model\tinput\tmethod\tmetric\tn_scans\testimate\tlower\tupper\tchance\tp_value\tverdict\n"
    localisation.write_text(header + row)
    try:
        run_snakemake(tiny_run, "--forcerun", "paper_comparison")
        claims = pd.read_csv(tiny_run / "results/paper/claims.tsv", sep="\t").set_index("claim_id")
        assert claims.loc["attention_on_infarct", "verdict"] == "holds"
    finally:
        localisation.unlink()
        run_snakemake(tiny_run, "--forcerun", "paper_comparison")


def test_report_builds_offline_with_the_synthetic_notice(tiny_run):
    from tests.conftest import run_snakemake

    run_snakemake(tiny_run, "--report", "results/report.html")
    html = (tiny_run / "results/report.html").read_text(errors="replace")
    assert "synthetic cohort" in html.lower()
    for name in (
        "table1.csv",
        "table2.csv",
        "table3.csv",
        "fig2_confusion.png",
        "fig3_attention.png",
        "comparison.csv",
        "audit.md",
    ):
        assert name in html, name
    # Offline: no script or stylesheet is fetched from the network.
    assert not re.search(r'<(script|link)[^>]*(src|href)="https?://', html)
