"""Tests of the synthetic cohort generator (htct.synth): DICOM validity, geometry, risk model, readers."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import shutil
import subprocess
from pathlib import Path

import jsonschema
import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from htct.errors import HTCTInputError
from htct.synth import generate_cohort, risk, sample_cohort
from htct.synth.generate import head_anatomy, plan_patients, render_axial_series
from htct.synth.geometry import SeriesGeometry
from htct.synth.phantom import head_hu

ROOT = Path(__file__).resolve().parents[1]
MATRIX = 64


def _varied_seed() -> int:
    """First seed whose 4-patient cohort has a scout, a 2.5 mm-only study, an extra thin
    reconstruction or not, a patient with several scans and series with and without the .dcm
    extension: every writer path is exercised."""
    for seed in range(500):
        cohort = sample_cohort(4, seed)
        scans = cohort.scans
        extensions = {flag for job in plan_patients(cohort, seed) for flag in job.with_extension.values()}
        varied = scans["has_scout"].any() and (scans["slice_thickness_mm"] == 2.5).any() and len(scans) > 4
        if varied and extensions == {True, False}:
            return seed
    raise AssertionError("no seed below 500 gives a varied 4-patient cohort")


@pytest.fixture(scope="module")
def seed() -> int:
    return _varied_seed()


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory, seed: int) -> Path:
    outdir = tmp_path_factory.mktemp("synthetic")
    generate_cohort(outdir, n_patients=4, seed=seed, matrix=MATRIX, n_readers=8)
    return outdir


@pytest.fixture(scope="module")
def truth(cohort_dir: Path) -> dict[str, pd.DataFrame]:
    tables = {
        name: pd.read_csv(cohort_dir / "truth" / f"{name}.tsv", sep="\t")
        for name in ("patients", "scans", "series")
    }
    tables["phi"] = pd.read_csv(cohort_dir / "truth" / "phi.tsv", sep="\t", dtype=str, keep_default_na=False)
    return tables


@pytest.fixture(scope="module")
def headers(cohort_dir: Path) -> list[tuple[Path, pydicom.Dataset]]:
    return [
        (path, pydicom.dcmread(path)) for path in sorted((cohort_dir / "dicom").rglob("*")) if path.is_file()
    ]


@pytest.fixture(scope="module")
def large_cohort():
    return sample_cohort(3000, seed=12)


def _series_files(headers, series_uid: str) -> list[pydicom.Dataset]:
    files = [ds for _, ds in headers if ds.SeriesInstanceUID == series_uid]
    return sorted(files, key=lambda ds: float(ds.ImagePositionPatient[2]))


def _kept_series(headers, scan: pd.Series) -> list[pydicom.Dataset]:
    """The axial series a converter keeps for the scan: thickness closest to 5 mm, in its folder."""
    in_study = [ds for path, ds in headers if str(path).find(scan["dicom_folder"] + "/") >= 0]
    axial = [ds for ds in in_study if "AXIAL" in ds.ImageType]
    best = min({float(ds.SliceThickness) for ds in axial}, key=lambda t: abs(t - 5.0))
    uid = next(ds.SeriesInstanceUID for ds in axial if float(ds.SliceThickness) == best)
    return _series_files(headers, uid)


def _affine_from_headers(files: list[pydicom.Dataset]) -> np.ndarray:
    """RAS affine derived independently from the DICOM headers (the NIfTI convention of the masks)."""
    orientation = np.array(files[0].ImageOrientationPatient, dtype=float)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    positions = np.array([ds.ImagePositionPatient for ds in files], dtype=float)
    order = np.argsort(positions @ normal)
    positions = positions[order]
    row_spacing, column_spacing = (float(v) for v in files[0].PixelSpacing)
    affine = np.eye(4)
    affine[:3, 0] = row_cosine * column_spacing
    affine[:3, 1] = column_cosine * row_spacing
    affine[:3, 2] = (positions[-1] - positions[0]) / (len(positions) - 1)
    affine[:3, 3] = positions[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def _hu_volume(files: list[pydicom.Dataset]) -> np.ndarray:
    return np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in files])


# --- geometry ----------------------------------------------------------------------------------


def test_affine_convention_by_hand() -> None:
    # PixelSpacing = [row spacing 0.5, column spacing 0.7]: i (columns) steps 0.7 mm along +x (left),
    # j (rows) 0.5 mm along +y (posterior); RAS flips both.
    geometry = SeriesGeometry(
        rows=10, columns=12, row_spacing_mm=0.5, column_spacing_mm=0.7, slice_spacing_mm=5.0,
        first_position_lps=(-100.0, -90.0, -50.0), n_slices=3,
    )  # fmt: skip
    expected = np.array([[-0.7, 0, 0, 100.0], [0, -0.5, 0, 90.0], [0, 0, 5.0, -50.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(geometry.affine_ras(), expected)
    np.testing.assert_allclose(geometry.slice_positions_lps()[-1], [-100.0, -90.0, -40.0])


# --- DICOM files ---------------------------------------------------------------------------------


def test_every_file_is_valid_ct_dicom(headers) -> None:
    assert headers, "no DICOM written"
    sop_uids = set()
    for path, ds in headers:
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, path
        assert ds.file_meta.MediaStorageSOPClassUID == CTImageStorage == ds.SOPClassUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == "CT" and ds.PixelRepresentation == 1 and ds.BitsAllocated == 16
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID):
            assert UID(uid).is_valid, uid
        sop_uids.add(ds.SOPInstanceUID)
    assert len(sop_uids) == len(headers)
    names = [path.name for path, _ in headers]
    assert any(n.endswith(".dcm") for n in names) and any("." not in n for n in names)
    # Every series folder names its files one way, as planned: all IMxxxx.dcm or all IMxxxx.
    by_folder = {}
    for path, _ in headers:
        by_folder.setdefault(path.parent, set()).add(path.suffix)
    assert all(len(suffixes) == 1 for suffixes in by_folder.values())


def test_axial_series_geometry_and_hu(headers, truth) -> None:
    for scan in truth["scans"].to_dict("records"):
        files = _kept_series(headers, scan)
        series = truth["series"][(truth["series"]["scan_id"] == scan["scan_id"]) & truth["series"]["kept"]]
        assert len(files) == series["n_slices"].item()
        thickness = float(files[0].SliceThickness)
        assert thickness == scan["slice_thickness_mm"] == float(files[0].SpacingBetweenSlices)
        n_5mm = len(files) * thickness / 5.0
        assert 24 <= n_5mm <= 40, "5 mm-equivalent slice count outside 24-40"
        z = np.array([float(ds.ImagePositionPatient[2]) for ds in files])
        np.testing.assert_allclose(np.diff(z), thickness, atol=1e-3)
        assert sorted(ds.InstanceNumber for ds in files) == list(range(1, len(files) + 1))
        assert list(files[0].ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]
        assert float(files[0].RescaleIntercept) == -1024 and float(files[0].RescaleSlope) == 1
        hu = _hu_volume(files)
        assert hu.min() < -900, "no air"
        assert np.percentile(hu, 99.5) > 700, "no bone"
        # Brain parenchyma at the centre of the head (its slice of largest head area).
        middle = np.argmin(np.abs(z - scan["head_z_mm"] - 20.0))
        rows, columns = files[middle].Rows, files[middle].Columns
        centre = hu[middle, rows // 2 - 4 : rows // 2 + 4, columns // 2 + 6 : columns // 2 + 12]
        assert 10 < np.median(centre) < 45, np.median(centre)


def test_studies_dated_in_scan_order_and_patient_ids(headers, truth, cohort_dir) -> None:
    clinical = pd.read_csv(cohort_dir / "clinical.csv", dtype={"dicom_patient_id": str})
    mrn = dict(zip(clinical["dicom_patient_id"], clinical["patient_id"], strict=True))
    studies: dict[str, set[tuple[str, str, str]]] = {}
    for _, ds in headers:
        assert ds.PatientID in mrn and ds.PatientID != mrn[ds.PatientID]
        studies.setdefault(mrn[ds.PatientID], set()).add((ds.StudyDate, ds.StudyTime, ds.StudyInstanceUID))
    scans = truth["scans"]
    for patient_id, found in studies.items():
        ranked = sorted(found)
        expected = scans[scans["patient_id"] == patient_id].sort_values("scan_rank")
        assert len(ranked) == len(expected)
        assert [d for d, _, _ in ranked] == [str(d) for d in expected["study_date"]]
        assert len({(d, t) for d, t, _ in ranked}) == len(ranked), "two studies at the same time"


def test_scouts_and_thin_series_written(headers, truth) -> None:
    scouts = [ds for _, ds in headers if "LOCALIZER" in ds.ImageType]
    assert len({ds.SeriesInstanceUID for ds in scouts}) == int(truth["scans"]["has_scout"].sum()) > 0
    for ds in scouts:
        orientation = np.array(ds.ImageOrientationPatient, dtype=float)
        assert abs(np.cross(orientation[:3], orientation[3:])[2]) < 0.5, "a scout must not be axial"
    thin = {
        ds.SeriesInstanceUID
        for _, ds in headers
        if "AXIAL" in ds.ImageType and float(ds.SliceThickness) == 2.5
    }
    expected = (truth["series"]["slice_thickness_mm"] == 2.5).sum()
    assert len(thin) == expected > 0


def test_series_proportions_on_a_large_cohort(large_cohort) -> None:
    scans, series = large_cohort.scans, large_cohort.series
    assert 1.2 < len(scans) / len(large_cohort.patients) < 1.4
    assert 0.11 < scans["has_scout"].mean() < 0.19
    assert 0.05 < (scans["slice_thickness_mm"] == 2.5).mean() < 0.11
    axial = series[series["kind"] == "axial"]
    assert axial.groupby("scan_id")["kept"].sum().eq(1).all()
    ids = scans.groupby("patient_id")["scan_id"].apply(list)
    assert all(v == [f"{p}_scan{k}" for k in range(1, len(v) + 1)] for p, v in ids.items())


# --- masks and conversion --------------------------------------------------------------------------


def test_mask_affine_matches_headers(headers, truth, cohort_dir) -> None:
    for scan in truth["scans"].to_dict("records"):
        files = _kept_series(headers, scan)
        mask = nib.load(cohort_dir / "truth" / "masks" / f"{scan['scan_id']}.nii.gz")
        assert mask.get_data_dtype() == np.uint8
        shape = (files[0].Columns, files[0].Rows, len(files))
        assert mask.shape == shape
        # The converted scan's grid: the DICOM-order grid flipped to the closest RAS+ axis order.
        dicom_affine = _affine_from_headers(files)
        orientation = nib.orientations.io_orientation(dicom_affine)
        expected = dicom_affine @ nib.orientations.inv_ornt_aff(orientation, shape)
        np.testing.assert_allclose(mask.affine, expected, atol=1e-4)
        assert nib.aff2axcodes(mask.affine) == ("R", "A", "S")
        np.testing.assert_allclose(mask.header.get_qform(), mask.affine, atol=1e-4)
        voxels = np.asarray(mask.dataobj)
        assert set(np.unique(voxels)) <= {0, 1}
        voxel_ml = abs(np.linalg.det(mask.affine[:3, :3])) / 1000
        assert voxels.sum() * voxel_ml == pytest.approx(
            scan["mask_volume_ml"], rel=1e-5
        )  # tsv keeps 6 digits
        # Coarse 64-pixel grids and the brain boundary cut the ellipsoid: within 40% of nominal.
        assert 0.6 * scan["lesion_volume_ml"] < scan["mask_volume_ml"] < 1.25 * scan["lesion_volume_ml"]


def test_dcm2niix_converts_kept_series(headers, truth, cohort_dir, tmp_path) -> None:
    binary = shutil.which("dcm2niix")
    if binary is None:
        pytest.skip("dcm2niix not on PATH (pip install dcm2niix==1.0.20260724, the dev extra)")
    for scan in truth["scans"].to_dict("records"):
        files = _kept_series(headers, scan)
        series_dir = next(p.parent for p, ds in headers if ds.SOPInstanceUID == files[0].SOPInstanceUID)
        out = tmp_path / scan["scan_id"]
        out.mkdir()
        result = subprocess.run(
            [binary, "-z", "y", "-f", "scan", "-o", str(out), str(series_dir)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        converted = nib.load(out / "scan.nii.gz")
        mask = nib.load(cohort_dir / "truth" / "masks" / f"{scan['scan_id']}.nii.gz")
        assert converted.shape == mask.shape
        # dcm2niix keeps the DICOM column order and reverses the rows; reoriented to the closest
        # RAS+ order it must give the mask grid and the HU of the DICOM pixels.
        canonical = nib.as_closest_canonical(converted)
        np.testing.assert_allclose(canonical.affine, mask.affine, atol=1e-3)
        hu_dicom_order = _hu_volume(files).transpose(2, 1, 0)  # [i, j, k]
        np.testing.assert_array_equal(np.asarray(canonical.get_fdata()), hu_dicom_order[::-1, ::-1, :])


def test_mask_marks_the_hypodense_voxels_of_the_written_images(headers, truth, cohort_dir, seed) -> None:
    patients = truth["patients"].set_index("patient_id")
    series_table = truth["series"]
    for scan in truth["scans"].to_dict("records"):
        files = _kept_series(headers, scan)
        series = series_table[(series_table["scan_id"] == scan["scan_id"]) & series_table["kept"]].iloc[0]
        # The same scan imaged with the same noise but no infarct: the written images differ from it
        # exactly where the mask file says the infarct is (the mask is read back through its affine).
        no_infarct, _ = render_axial_series(
            patients.loc[scan["patient_id"]], pd.Series(scan), series, seed, MATRIX, lesion_hu_drop=0.0
        )
        darker = (_hu_volume(files) - no_infarct).transpose(2, 1, 0) < 0  # [i, j, k] DICOM order
        mask = nib.load(cohort_dir / "truth" / "masks" / f"{scan['scan_id']}.nii.gz")
        to_dicom_order = nib.orientations.ornt_transform(
            nib.orientations.io_orientation(mask.affine),
            nib.orientations.io_orientation(_affine_from_headers(files)),
        )
        lesion = nib.orientations.apply_orientation(np.asarray(mask.dataobj), to_dicom_order).astype(bool)
        if scan["lesion_hu_drop"] < 3.0:  # rounding to whole HU can hide a small drop at slab edges
            continue
        assert lesion.any()
        # Partial volume darkens a few voxels next to the mask; inside the mask almost all are darker.
        assert darker[lesion].mean() > 0.9
        assert darker[~lesion].sum() < 0.5 * lesion.sum()


def test_lesion_lowers_parenchyma_by_the_hu_drop(truth, seed) -> None:
    patients = truth["patients"].set_index("patient_id")
    patient = patients.iloc[int(np.argmax(patients["lesion_volume_ml"]))]
    anatomy = head_anatomy(patient, seed)
    grid = np.mgrid[-80:80:2.0, -100:100:2.0, -60:70:2.0].astype(np.float32)
    with_drop, lesion = head_hu(grid[0], grid[1], grid[2], anatomy, 7.5)
    without, lesion_again = head_hu(grid[0], grid[1], grid[2], anatomy, 0.0)
    np.testing.assert_array_equal(lesion, lesion_again)
    assert lesion.sum() * 8e-3 == pytest.approx(patient["lesion_volume_ml"], rel=0.25)
    np.testing.assert_allclose((without - with_drop)[lesion], 7.5, atol=1e-4)
    np.testing.assert_array_equal(without[~lesion], with_drop[~lesion])
    assert np.all((without[lesion] > 20) & (without[lesion] < 80)), "infarct outside parenchyma"


# --- sheets, truth and the risk model ------------------------------------------------------------


def test_sheets_validate_against_schemas(cohort_dir, truth) -> None:
    for sheet, schema_name in (("clinical.csv", "clinical"), ("readers.csv", "readers")):
        schema = yaml.safe_load((ROOT / "schemas" / f"{schema_name}.schema.yaml").read_text())
        table = pd.read_csv(cohort_dir / sheet, dtype={"dicom_patient_id": str})
        for record in table.to_dict("records"):
            jsonschema.validate({k: v.item() if hasattr(v, "item") else v for k, v in record.items()}, schema)
    readers = pd.read_csv(cohort_dir / "readers.csv")
    assert readers.groupby("reader")["scan_id"].apply(set).eq(set(truth["scans"]["scan_id"])).all()
    assert readers["reader"].nunique() == 8
    assert "synthetic" in (cohort_dir / "README.txt").read_text().lower()


def test_p_true_follows_the_documented_model(truth, large_cohort) -> None:
    intercept = risk.risk_model(risk.PAPER_DESIGN).intercept
    for patients in (truth["patients"], large_cohort.patients):
        medication = patients["medication"].map(risk.MEDICATION_LOG_ODDS)
        eta = (
            intercept
            + risk.VOLUME_LOG_ODDS * np.log(patients["lesion_volume_ml"] / 25.0)
            + risk.HDA_LOG_ODDS * patients["hyperdense_artery"]
            + risk.LEUKOARAIOSIS_LOG_ODDS * patients["leukoaraiosis"]
            + risk.AGE_LOG_ODDS_PER_10Y * (patients["age"] - 66.6) / 10
            + medication
        )
        np.testing.assert_allclose(patients["p_true"], expit(eta), rtol=1e-5)


def test_p_image_is_p_true_averaged_over_clinical_factors(large_cohort) -> None:
    patients = large_cohort.patients
    model = risk.risk_model(risk.PAPER_DESIGN)
    # Law of total expectation: within any image-factor stratum, mean p_true = mean p_image.
    for _, group in patients.groupby(["leukoaraiosis", "hyperdense_artery"]):
        if len(group) < 100:
            continue
        difference = (group["p_true"] - group["p_image"]).mean()
        assert abs(difference) < 4 * group["p_true"].std() / np.sqrt(len(group)) + 0.005
        hidden = model.p_image_without_volume(
            group["hyperdense_artery"].iloc[:1], group["leukoaraiosis"].iloc[:1]
        )
        standard_error = group["p_image"].std() / np.sqrt(len(group))
        assert hidden[0] == pytest.approx(group["p_image"].mean(), abs=4 * standard_error + 0.005)


def test_intercept_is_solved_for_the_designs_prevalence() -> None:
    # The expectation is exact (sums and quadrature over every factor), so it hits the target.
    paper = risk.risk_model(risk.PAPER_DESIGN)
    assert paper.expected_prevalence() == pytest.approx(231 / 474, abs=1e-8)
    rarer = risk.RiskModel(dataclasses.replace(risk.PAPER_DESIGN, prevalence=0.3))
    assert rarer.expected_prevalence() == pytest.approx(0.3, abs=1e-8)
    assert rarer.intercept < paper.intercept
    # Monte Carlo check of the same expectation: the realised prevalence of a large cohort.
    cohort = sample_cohort(4000, seed=21, n_readers=1, design=rarer.design)
    assert cohort.patients["p_true"].mean() == pytest.approx(0.3, abs=0.015)
    assert cohort.clinical["label"].mean() == pytest.approx(0.3, abs=0.025)
    # The effect sizes are the design's constants whatever the prevalence: only the intercept moves.
    factors = cohort.patients.iloc[:5]
    args = [factors[c] for c in ("z_volume", "hyperdense_artery", "leukoaraiosis", "age", "medication")]
    np.testing.assert_allclose(
        logit(rarer.p_true(*args)) - logit(paper.p_true(*args)), rarer.intercept - paper.intercept
    )
    # The 2026 demo's older design (age 66.6 +- 12, more anticoagulation) had intercept -1.35 at
    # its realised prevalence of 0.41: the exact expectation reproduces that.
    demo = risk.CohortDesign(66.6, 12.0, 0.68, (0.40, 0.12, 0.18, 0.22, 0.08), 0.41, (0.75, 0.2, 0.05))
    assert risk.RiskModel(demo, intercept=-1.35).expected_prevalence() == pytest.approx(0.4118, abs=1e-3)


def test_cohort_matches_the_papers_design(large_cohort) -> None:
    """Zhang et al. 2026 Table 1 marginals, 231/474 HT and 613/474 scans per patient, on 3,000 patients."""
    clinical, patients = large_cohort.clinical, large_cohort.patients
    n = len(clinical)
    design = risk.PAPER_DESIGN
    # Realised, not only expected: the age's mean and SD up to the rounding to whole years, the
    # shares of sex, medication and scans per patient to one patient.
    assert clinical["age"].mean() == pytest.approx(62.45, abs=0.05)
    assert clinical["age"].std() == pytest.approx(11.85, abs=0.05)
    assert (clinical["sex"] == "M").sum() == round(0.7405 * n)
    counts = clinical["medication"].value_counts()
    for medication, share in zip(risk.MEDICATIONS, design.medication_probabilities, strict=True):
        assert abs(counts.get(medication, 0) - share * n) < 1, medication
    assert clinical["label"].mean() == pytest.approx(231 / 474, abs=4 * np.sqrt(0.25 / n))
    scans_per_patient = large_cohort.patients["n_scans"].value_counts()
    for k, share in zip((1, 2, 3), design.scans_per_patient, strict=True):
        assert abs(scans_per_patient[k] - share * n) < 1, k
    assert len(large_cohort.scans) == (large_cohort.patients["n_scans"]).sum()
    assert design.mean_scans_per_patient == pytest.approx(613 / 474, abs=1e-3)
    # The image signal keeps its strength: the image-only oracle's AUC, per patient and per scan.
    assert 0.80 <= roc_auc_score(patients["label"], patients["p_image"]) <= 0.90
    assert roc_auc_score(patients["label"], patients["p_true"]) > roc_auc_score(
        patients["label"], patients["p_image"]
    )
    invisible_first = ~large_cohort.scans.loc[large_cohort.scans["scan_rank"] == 1, "visible"]
    assert 0.1 < invisible_first.mean() < 0.4


def test_schema_defaults_are_the_paper_design() -> None:
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    properties = schema["properties"]["synthetic"]["properties"]["design"]["properties"]
    defaults = {key: value["default"] for key, value in properties.items() if key != "medication"}
    defaults["medication"] = {
        key: value["default"] for key, value in properties["medication"]["properties"].items()
    }
    assert risk.CohortDesign.from_config(defaults) == risk.PAPER_DESIGN
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert config["synthetic"]["n_patients"] == 474 and config["synthetic"]["n_readers"] == 8


def test_design_rejects_shares_that_do_not_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        dataclasses.replace(risk.PAPER_DESIGN, medication_probabilities=(0.5, 0.1, 0.1, 0.1, 0.1))


def test_readers_resemble_the_papers_neurologists() -> None:
    cohort = sample_cohort(200, seed=5)
    readers = cohort.readers.merge(cohort.scans[["scan_id", "patient_id"]]).merge(
        cohort.clinical[["patient_id", "label"]]
    )
    readers["call"] = readers["p_ht"] >= 0.5
    for _, reads in readers.groupby("reader"):
        sensitivity = reads.loc[reads["label"] == 1, "call"].mean()
        specificity = 1 - reads.loc[reads["label"] == 0, "call"].mean()
        assert 0.2 <= sensitivity <= 0.65, sensitivity
        assert 0.72 <= specificity <= 0.98, specificity
    calls = readers.pivot(index="scan_id", columns="reader", values="call")
    agreement = [(calls[a] == calls[b]).mean() for a, b in itertools.combinations(calls.columns, 2)]
    assert 0.55 <= min(agreement) and max(agreement) <= 0.93


# --- PHI, determinism, safety ---------------------------------------------------------------------


def test_phi_is_in_headers_only(headers, truth, cohort_dir) -> None:
    phi = truth["phi"]
    assert set(phi["keyword"]) >= {
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "AccessionNumber",
        "InstitutionName",
    }
    written = {
        (str(ds.PatientID), kw, str(ds.get(kw, ""))) for _, ds in headers for kw in set(phi["keyword"])
    }
    mrn = phi[phi["keyword"] == "PatientID"].set_index("patient_id")["value"]
    for row in phi.to_dict("records"):
        assert (mrn[row["patient_id"]], row["keyword"], row["value"]) in written, row
    private = set(
        phi.loc[phi["keyword"].isin(["PatientName", "PatientBirthDate", "AccessionNumber"]), "value"]
    )
    for table in ("readers.csv", "truth/patients.tsv", "truth/scans.tsv", "truth/series.tsv"):
        text = (cohort_dir / table).read_text()
        assert not any(value in text for value in private), table
    paths = " ".join(str(p.relative_to(cohort_dir)) for p, _ in headers)
    assert not any(value in paths for value in set(phi["value"]))


def test_same_seed_gives_identical_files(tmp_path) -> None:
    def digests(outdir: Path) -> dict[str, str]:
        return {
            str(p.relative_to(outdir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(outdir.rglob("*"))
            if p.is_file()
        }

    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_cohort(tmp_path / name, n_patients=4, seed=seed, matrix=MATRIX, n_readers=2)
        runs.append(digests(tmp_path / name))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_refuses_to_overwrite_foreign_folder(tmp_path) -> None:
    (tmp_path / "dicom").mkdir()
    (tmp_path / "dicom" / "precious.dcm").write_bytes(b"not ours")
    with pytest.raises(HTCTInputError, match="did not write"):
        generate_cohort(tmp_path, n_patients=4, seed=1, matrix=MATRIX)
    assert (tmp_path / "dicom" / "precious.dcm").exists()


def test_the_paper_sized_cohort_has_table_1s_counts() -> None:
    """474 patients of the default design: Table 1's counts (74.05% of 474 = 351 men; 314
    antiplatelet, 12 anticoagulant, 101 thrombolytic, 41 none, 6 not available) and 613 scans."""
    cohort = sample_cohort(474, seed=2026)
    assert (cohort.clinical["sex"] == "M").sum() == 351
    assert cohort.clinical["medication"].value_counts().to_dict() == {
        "antiplatelet": 314,
        "thrombolytic": 101,
        "none": 41,
        "anticoagulant": 12,
        "not_available": 6,
    }
    assert len(cohort.scans) == 613
    assert f"{cohort.clinical['age'].mean():.1f} ± {cohort.clinical['age'].std():.1f}" == "62.5 ± 11.9"


def test_exact_allocation_keeps_each_patients_probabilities() -> None:
    """Counts by largest remainder; over many draws each item gets each category at its share."""
    from htct.synth.cohort import allocate_exactly, exact_counts

    assert exact_counts(10, [0.25, 0.25, 0.5]).tolist() == [3, 2, 5]
    assert exact_counts(7, [1, 1]).tolist() == [4, 3]
    rng = np.random.default_rng(0)
    draws = np.array([allocate_exactly(rng.random(8), ["a", "b"], [0.25, 0.75]) for _ in range(4000)])
    assert ((draws == "a").sum(axis=1) == 2).all()
    np.testing.assert_allclose((draws == "a").mean(axis=0), 0.25, atol=0.03)
