"""End to end on an own cohort: real scanner series, no readers sheet, no synthetic job anywhere.

The cohort (tests/own_cohort.py) is made from the real head-CT series of ../shared/data/dcm_qa_ct:
copies of the Philips 5 mm series with new Study/Series/SOP UIDs and PatientIDs, some with the
exam's scout and secondary captures, the Philips DIRFILEs, a patient with a second study, a stray
patient not in the clinical sheet, a patient without DICOM, and the GE series with an 18.5 degree
gantry tilt, which must be kept and tilt-corrected, a top slice cut short before its
SeriesInstanceUID and a byte-identical copy of a slice. A site's config (data.synthetic: false, its
DICOM folder and clinical sheet, nothing else of data:) runs the whole DAG at test sizes (32 px,
2 epochs) in about four minutes on 2 cores; then `htct predict` runs on its series. The smallest
cohort that can be split (4 patients, 2 per label) runs up to the split, and with 3 + 1 fails there
with one line, its QC tables written.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_workflow, run_snakemake
from own_cohort import (
    DUPLICATED,
    N_PHILIPS_PATIENTS,
    SECOND_STUDY,
    STRAY,
    TILTED,
    TRUNCATED,
    WITH_SCOUT_AND_SUMMARY,
    WITHOUT_DICOM,
    build_own_cohort,
    build_small_cohort,
    own_cohort_config,
)

from htct.dicom import file_key
from htct.tables.reader_study import EVERY_SCAN_HT_LABEL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_run(shared_data, tmp_path_factory) -> tuple[Path, dict[str, Path], subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("own_cohort")
    cohort = build_own_cohort(root / "cohort", shared_data / "dcm_qa_ct")
    workdir = copy_workflow(root / "workflow")
    config = own_cohort_config(workdir / "my_cohort.yaml", cohort)
    result = run_snakemake(workdir, configfiles=(str(config),))
    return workdir, cohort, result


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def executed_rules(workdir: Path) -> set[str]:
    """Every rule of a job of any Snakemake run in `workdir` (its own logs in .snakemake/log)."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    assert logs
    text = "\n".join(log.read_text() for log in logs)
    return set(re.findall(r"^(?:local)?rule (\w+):$", text, flags=re.MULTILINE))


def test_the_dag_ran_to_the_end_without_any_synthetic_job(own_run):
    workdir, _, result = own_run
    rules = executed_rules(workdir)
    assert "synth_cohort" not in rules and "lesion_masks" not in rules
    assert {"convert_dicom", "preprocess", "split", "table1", "train", "evaluate", "figures"} <= rules
    assert {"attribution", "numbers", "fig1_pipeline", "all"} <= rules
    assert "synth_cohort" not in result.stdout + result.stderr
    assert not (workdir / "resources" / "synthetic").exists()  # nothing synthetic, not even the folder
    assert not (workdir / "logs" / "synth_cohort.log").exists()
    config = yaml.safe_load((workdir / "my_cohort.yaml").read_text())
    assert set(config["data"]) == {"synthetic", "dicom_dir", "clinical"}  # no readers, masks or truth


def test_qc_series_table_accounts_for_every_file_of_the_export(own_run):
    workdir, cohort, _ = own_run
    qc = read_tsv(workdir / "results/qc/series.tsv")
    n_files = sum(1 for path in cohort["dicom"].rglob("*") if path.is_file())
    assert qc["n_files"].astype(int).sum() == n_files
    by_reason = qc.groupby(qc["reason"].str.extract(r"^([a-zA-Z /]+)")[0]).size().to_dict()
    kept = qc[qc["status"] == "kept"]
    # Every Philips copy (one patient twice) and the tilted GE series.
    assert sorted(kept["patient_id"]) == sorted(
        [f"H{k:02d}" for k in range(1, N_PHILIPS_PATIENTS + 1)] + [SECOND_STUDY, TILTED]
    )
    assert sorted(kept.loc[kept["patient_id"] == SECOND_STUDY, "scan_id"]) == ["H04_scan1", "H04_scan2"]
    excluded = qc[qc["status"] == "excluded"]
    scouts = excluded[excluded["reason"].str.startswith("scout/localizer")]
    captures = excluded[excluded["reason"].str.startswith("secondary capture")]
    assert sorted(scouts["patient_id"]) == sorted(captures["patient_id"]) == sorted(WITH_SCOUT_AND_SUMMARY)
    stray = excluded[excluded["reason"].str.startswith("patient not in the clinical sheet")]
    assert len(stray) == 1 and stray["patient_id"].iloc[0] == "" and stray["n_slices"].iloc[0] == "28"
    directory_files = excluded[excluded["reason"].str.startswith("DICOMDIR")]
    assert len(directory_files) == sum(1 for _ in cohort["dicom"].rglob("DIRFILE"))
    cut = excluded[excluded["reason"].str.startswith("DICOM file without SeriesInstanceUID")]
    assert list(cut["patient_id"]) == [TRUNCATED]
    n_rows = len(kept) + len(scouts) + len(captures) + len(stray) + len(directory_files) + len(cut)
    assert n_rows == len(qc), by_reason
    # No PHI: the stray patient's PatientID appears nowhere.
    assert STRAY not in (workdir / "results/qc/series.tsv").read_text()


def test_edge_slice_cut_short_is_on_its_patients_row_and_the_scan_says_it_lost_a_slice(own_run):
    workdir, cohort, _ = own_run
    qc = read_tsv(workdir / "results/qc/series.tsv")
    axial = cohort["dicom"] / "MRN-0005" / "study1" / "axial"
    (broken,) = [path for path in axial.iterdir() if path.name != "DIRFILE" and path.stat().st_size < 10_000]
    key = file_key(broken.relative_to(cohort["dicom"]))
    (scan,) = qc[(qc["patient_id"] == TRUNCATED) & (qc["status"] == "kept")].to_dict("records")
    assert scan["n_slices"] == "27"
    assert scan["notes"].startswith(f"27 of 28 slices: 1 unreadable file (series_key {key} in this table)")
    (row,) = qc[qc["series_key"] == key].to_dict("records")
    assert row["patient_id"] == TRUNCATED and row["status"] == "excluded"
    assert row["reason"] == (
        f"DICOM file without SeriesInstanceUID (file of {broken.stat().st_size} bytes that ends before its "
        f"pixel data: a slice of series {scan['series_key']} in its folder?)"
    )


def test_identical_copy_of_a_slice_is_dropped_and_the_scan_kept(own_run):
    workdir, _, _ = own_run
    qc = read_tsv(workdir / "results/qc/series.tsv")
    (scan,) = qc[(qc["patient_id"] == DUPLICATED) & (qc["status"] == "kept")].to_dict("records")
    assert (scan["n_files"], scan["n_slices"]) == ("29", "28")
    assert scan["notes"].startswith(
        "1 identical copy of a slice dropped (same position and pixels as another file, same SOPInstanceUID)"
    )


def test_console_has_no_spurious_warning_and_ends_with_the_excluded_patients(own_run):
    _, _, result = own_run
    console = result.stdout + result.stderr
    assert "Empty file path" not in console
    assert (
        f"HTCT: 1 of {N_PHILIPS_PATIENTS + 2} patient(s) of the clinical sheet excluded ({WITHOUT_DICOM}); "
        "the reasons are in results/qc/patients.tsv"
    ) in result.stderr


def test_fig3_on_an_own_cohort_claims_no_lesion_truth(own_run):
    workdir, _, _ = own_run
    with np.load(workdir / "results/attribution/full_head/cases.npz") as stored:
        titles, rows = [str(title) for title in stored["titles"]], stored["rows"].tolist()
        assert "lesion" not in stored.files
    predictions = read_tsv(workdir / "results/predictions/ctnet.tsv")
    test = predictions[predictions["split"] == "test"].astype({"p_ht": float}).set_index("scan_id")
    index = read_tsv(workdir / "results/arrays/index.tsv").set_index("row")
    highest, lowest = (test.loc[index.loc[str(row), "scan_id"]] for row in rows)
    # The attribution rule predicts again (another batch, float32): ties may break either way.
    assert highest["p_ht"] >= test["p_ht"].max() - 1e-5 and lowest["p_ht"] <= test["p_ht"].min() + 1e-5
    outcome = {"1": "HT", "0": "no HT"}
    assert titles[0] == f"Highest predicted risk: p(HT) {highest['p_ht']:.2f}, {outcome[highest['y_true']]}"
    assert titles[1] == f"Lowest predicted risk: p(HT) {lowest['p_ht']:.2f}, {outcome[lowest['y_true']]}"
    page = (workdir / "results/report/figures/fig3_attention.html").read_text()
    assert "highest and (b) the lowest predicted HT risk" in page
    for claim in ("synthetic truth", "not yet visible", "visible infarct", "outline in blue"):
        assert claim not in page, claim


def test_tilted_ge_series_is_kept_and_tilt_corrected(own_run):
    workdir, _, _ = own_run
    qc = read_tsv(workdir / "results/qc/series.tsv")
    (row,) = qc[qc["patient_id"] == TILTED].to_dict("records")
    assert row["status"] == "kept" and float(row["tilt_deg"]) == pytest.approx(18.5)
    assert row["correction"].startswith("gantry tilt 18.50 deg resampled to an orthogonal grid")
    scans = read_tsv(workdir / "results/qc/scans.tsv")
    nifti = nib.load(workdir / scans.set_index("patient_id").loc[TILTED, "nifti"])
    # Corrected onto an orthogonal grid: the affine has no shear left.
    directions = nifti.affine[:3, :3] / np.linalg.norm(nifti.affine[:3, :3], axis=0)
    np.testing.assert_allclose(directions.T @ directions, np.eye(3), atol=1e-4)


def test_qc_patients_table(own_run):
    workdir, _, _ = own_run
    patients = read_tsv(workdir / "results/qc/patients.tsv").set_index("patient_id")
    assert patients.loc[WITHOUT_DICOM, "status"] == "excluded"
    assert patients.loc[WITHOUT_DICOM, "reason"].startswith("no DICOM series whose PatientID matches")
    included = patients[patients["status"] == "included"]
    assert sorted(included.index) == sorted(
        [f"H{k:02d}" for k in range(1, N_PHILIPS_PATIENTS + 1)] + [TILTED]
    )
    assert patients.loc[SECOND_STUDY, ["n_scans_found", "n_scans_kept"]].tolist() == ["2", "2"]


def test_tables_and_figures_have_no_reader_rows_and_no_synthetic_label(own_run):
    workdir, _, _ = own_run
    table2 = pd.read_csv(workdir / "results/tables/table2.csv")
    # CTNet and the trivial reference (every scan called HT), no reader rows
    assert list(table2["Rater"].unique()) == ["CTNet", EVERY_SCAN_HT_LABEL]
    assert not table2["synthetic"].any()
    assert "no reader study" in (workdir / "results/tables/table2.md").read_text()
    table3 = pd.read_csv(workdir / "results/tables/table3.csv")
    assert list(table3["Rater"].unique()) == [
        "CTNet",
        "Woźniak et al. (2023)",
        "Soundari et al. (2022)",
        EVERY_SCAN_HT_LABEL,
    ]
    assert list(table3["Metric"].unique()) == ["Accuracy", "Sensitivity", "Specificity", "F1 (macro)"]
    for path in sorted((workdir / "results/tables").glob("*.md")):
        assert "SYNTHETIC" not in path.read_text(), path.name
    numbers = json.loads((workdir / "results/numbers.json").read_text())
    assert numbers["synthetic"] is False and numbers["readers"] == {}
    split = read_tsv(workdir / "results/split/split.tsv")
    assert numbers["cohort"]["patients"] == len(split) == N_PHILIPS_PATIENTS + 1
    scans = read_tsv(workdir / "results/evaluation/test_scans.tsv")
    assert not [column for column in scans if "Clinician" in column]
    for figure in ("fig2_confusion", "supp_fig4_roc", "calibration", "decision_curve", "fig3_attention"):
        assert (workdir / f"results/figures/{figure}.png").stat().st_size > 1000, figure


def test_models_record_that_they_were_trained_on_an_own_cohort(own_run):
    workdir, _, _ = own_run
    split = read_tsv(workdir / "results/split/split.tsv")
    index = read_tsv(workdir / "results/arrays/index.tsv")
    for model in ("ctnet", "wozniak2023", "soundari2022"):
        provenance = yaml.safe_load((workdir / f"results/models/{model}/config.yaml").read_text())[
            "provenance"
        ]
        assert provenance["synthetic"] is False
        assert provenance["cohort"]["n_patients"] == len(split)
        assert provenance["cohort"]["n_scans"] == len(index)
        for part in ("train", "val", "test"):
            assert provenance["cohort"][f"n_patients_{part}"] == int((split["part"] == part).sum())


def test_report_captions_say_there_is_no_reader_study(own_run):
    workdir, _, _ = own_run
    run_snakemake(workdir, "--report", "results/report.html", configfiles=("my_cohort.yaml",))
    html = (workdir / "results/report.html").read_text(errors="replace")
    assert "no reader study" in html and "synthetic cohort" not in html.lower()


def test_htct_predict_batch_on_the_cohorts_series_matches_the_converted_scans(own_run, tmp_path):
    workdir, cohort, _ = own_run
    cases = tmp_path / "cases"
    cases.mkdir()
    dicom = cohort["dicom"]
    for name, folder in {
        "H01": dicom / "MRN-0001" / "study1" / "axial",
        "H13_tilted": dicom / "MRN-GE" / "tilted",
        "H01_scout": dicom / "MRN-0001" / "study1" / "scout",
    }.items():
        (cases / name).symlink_to(folder, target_is_directory=True)
    out = tmp_path / "predictions"
    command = [sys.executable, "-m", "htct.cli", "predict", "-i", str(cases), "-o", str(out)]
    result = subprocess.run(
        [*command, "--model", "results/models/ctnet", "--device", "cpu"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr  # the scout folder cannot be predicted
    assert "RESEARCH USE ONLY" in result.stderr and "trained on an own cohort of" in result.stderr
    assert "SYNTHETIC" not in result.stderr
    table = pd.read_csv(out / "predictions.tsv", sep="\t").set_index("case")
    assert table.loc["H01", "status"] == table.loc["H13_tilted", "status"] == "ok"
    assert table.loc["H01_scout", "status"] == "error"
    assert "scout/localizer" in table.loc["H01_scout", "error"]
    assert set(table["trained_on"]) == {"own cohort"}
    # The scan written beside the heatmap is the workflow's conversion of that series, same header.
    scans = read_tsv(workdir / "results/qc/scans.tsv").set_index("scan_id")
    converted = nib.load(workdir / scans.loc["H01_scan1", "nifti"])
    scan, heatmap = nib.load(out / "H01" / "scan.nii.gz"), nib.load(out / "H01" / "heatmap.nii.gz")
    np.testing.assert_array_equal(np.asarray(scan.dataobj), np.asarray(converted.dataobj))
    for image in (scan, heatmap):
        np.testing.assert_allclose(image.affine, converted.affine, atol=1e-5)
        assert (int(image.header["qform_code"]), int(image.header["sform_code"])) == (1, 1)
        assert image.header.get_xyzt_units()[0] == "mm"
    prediction = json.loads((out / "H01" / "prediction.json").read_text())
    qc = read_tsv(workdir / "results/qc/series.tsv").set_index("scan_id")
    assert prediction["series"]["series_key"] == qc.loc["H01_scan1", "series_key"]


# --- The smallest cohort: 4 patients, 2 per label ------------------------------------------------------


def snakemake_targets(workdir: Path, config: Path, *targets: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *targets, "--configfile", str(config)]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True)


@pytest.fixture(scope="module")
def small_cohort(shared_data, tmp_path_factory) -> tuple[Path, Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("small_cohort")
    cohort = build_small_cohort(root / "cohort", (0, 1, 0, 1), shared_data / "dcm_qa_ct")
    workdir = copy_workflow(root / "workflow")
    split = {"seed": 3, "test_fraction": 0.1, "val_fraction": 0.15}  # the defaults' size: 1 test patient of 4
    return workdir, own_cohort_config(workdir / "four.yaml", cohort, split=split), cohort


def test_four_patients_two_per_label_are_split_and_a_class_of_one_stops_with_one_line(small_cohort):
    workdir, config, cohort = small_cohort
    dry = snakemake_targets(workdir, config, "-n")  # the whole DAG of an own cohort: no spurious warning
    assert dry.returncode == 0, dry.stderr
    assert "Empty file path" not in dry.stdout + dry.stderr
    result = snakemake_targets(workdir, config, "results/split/split.tsv")
    assert result.returncode == 0, result.stderr
    split = read_tsv(workdir / "results/split/split.tsv")
    assert split.groupby("part")["label"].apply(sorted).to_dict() == {
        "test": ["0", "1"], "train": [split.loc[split["part"] == "train", "label"].iloc[0]],
        "val": [split.loc[split["part"] == "val", "label"].iloc[0]],
    }  # fmt: skip
    log = (workdir / "logs/split.log").read_text()
    assert "test part: 2 patient(s) instead of 1" in log and "val part drawn without stratification" in log
    assert "HTCT: all 4 patient(s) of the clinical sheet included" in result.stderr
    # One patient fewer with HT: nothing to split by; one line names the counts, the QC tables are there.
    clinical = cohort["clinical"].read_text().replace("S04,MRN-S4,1", "S04,MRN-S4,0")
    cohort["clinical"].write_text(clinical)
    (workdir / "results/qc/patients.tsv").unlink()
    failed = snakemake_targets(workdir, config, "results/split/split.tsv")
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith("HTCT-ERROR")]
    assert len(errors) == 1 and "Traceback" not in (workdir / "logs/split.log").read_text()
    assert errors[0].startswith(
        "HTCT-ERROR: cannot stratify the split: patients with a kept scan per label {0: 3, 1: 1}"
    )
    patients = read_tsv(workdir / "results/qc/patients.tsv")
    assert list(patients["status"]) == ["included"] * 4
