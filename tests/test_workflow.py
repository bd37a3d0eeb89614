"""End to end: the tiny synthetic config through the whole DAG in a temporary directory."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from htct.sheets import load_clinical
from htct.split import check_split
from htct.tables import table1

pytestmark = pytest.mark.slow


def test_dry_run_shows_the_chain(tiny_run):
    from tests.conftest import run_snakemake

    result = run_snakemake(tiny_run, "-n", "--forceall")
    for rule in ("synth_cohort", "convert_dicom", "preprocess", "split", "table1"):
        assert f"rule {rule}:" in result.stdout or rule in result.stdout, rule


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
    if not (tiny_run / "results/evaluation/counterfactuals.tsv").exists():
        assert set(uses["uses_infarct"]) == {"undecided"}
    table = pd.read_csv(tiny_run / "results/tables/attribution.csv", comment="#")
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


def test_report_builds_offline_with_the_synthetic_notice(tiny_run):
    from tests.conftest import run_snakemake

    run_snakemake(tiny_run, "--report", "results/report.html")
    html = (tiny_run / "results/report.html").read_text(errors="replace")
    assert "synthetic cohort" in html.lower()
    for name in ("table1.csv", "table2.csv", "table3.csv", "fig2_confusion.png", "fig3_attention.png"):
        assert name in html, name
    # Offline: no script or stylesheet is fetched from the network.
    assert not re.search(r'<(script|link)[^>]*(src|href)="https?://', html)
