"""Tests of htct.dicom: real CT series against dcm2niix, and small generated series for each QC rule."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import RLELossless, generate_uid

from htct.dicom import convert_tree, file_key, series_key
from htct.dicom.testing import head_phantom, write_ct_series
from htct.errors import HTCTInputError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QA_CT = SHARED_DATA / "dcm_qa_ct"
CLINICAL_HEADER = "patient_id,dicom_patient_id,label,age,sex,medication\n"


def dcm2niix_binary() -> str | None:
    candidate = Path(sys.executable).parent / "dcm2niix"
    return str(candidate) if candidate.exists() else shutil.which("dcm2niix")


def canonical(path: Path) -> nib.Nifti1Image:
    """The image reoriented (flips/permutations only, exact) to RAS voxel order."""
    return nib.as_closest_canonical(nib.load(path))


def uid_of(folder: Path) -> str:
    return str(
        pydicom.dcmread(next(p for p in sorted(folder.iterdir()) if p.name != "DIRFILE")).SeriesInstanceUID
    )


def qc_row(qc: pd.DataFrame, key: str) -> pd.Series:
    rows = qc[qc["series_key"] == key]
    assert len(rows) == 1, f"expected one QC row for {key}, got {len(rows)}"
    return rows.iloc[0]


# ---------------------------------------------------------------------------------------------------
# Real data: dcm2niix's CT QA series (GE tilted, Philips axial + scout + secondary capture + DIRFILE)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qa_conversion(tmp_path_factory):
    if not QA_CT.is_dir():
        pytest.skip(f"shared test data not found at {QA_CT} (see shared/data/README.md)")
    tmp = tmp_path_factory.mktemp("qa")
    clinical = tmp / "clinical.csv"
    clinical.write_text(CLINICAL_HEADER + "P01,PLASTIC,1,70,M,none\nP02,QMNx85rKkkg,0,64,F,antiplatelet\n")
    scans = convert_tree(QA_CT, clinical, tmp / "nifti", tmp / "qc" / "series.tsv", tmp / "qc" / "scans.tsv")
    qc = pd.read_csv(tmp / "qc" / "series.tsv", sep="\t", dtype={"series_key": str, "patient_id": str})
    return tmp, scans, qc


def test_philips_axial_equals_dcm2niix(qa_conversion, tmp_path):
    """Philips S2010 (28 x 512 x 512, 5 mm): same HU voxels and same affine as dcm2niix.

    Compared: both NIfTIs reoriented by nibabel to RAS voxel order (as_closest_canonical: exact
    flips/permutations); then the HU arrays (scaling applied, get_fdata) must be identical and the
    voxel-to-world affines equal within 1e-4 mm.
    """
    binary = dcm2niix_binary()
    if binary is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    tmp, scans, _ = qa_conversion
    subprocess.run([binary, "-z", "y", "-f", "ref", "-o", str(tmp_path), str(QA_CT / "Philips_S21570" / "S2010")],
                   check=True, capture_output=True)  # fmt: skip
    reference = canonical(tmp_path / "ref.nii.gz")
    row = scans.set_index("scan_id").loc["P01_scan1"]
    ours = canonical(Path(row["nifti"]))
    assert row["series_key"] == series_key(uid_of(QA_CT / "Philips_S21570" / "S2010"))
    assert ours.shape == reference.shape == (512, 512, 28)
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-4)
    assert np.array_equal(ours.get_fdata(), reference.get_fdata())
    assert nib.load(row["nifti"]).get_data_dtype() == np.int16  # slope 1, intercept -1024: plain int16 HU
    assert nib.aff2axcodes(nib.load(row["nifti"]).affine) == ("R", "A", "S")
    assert row["n_slices"] == 28 and row["slice_spacing_mm"] == pytest.approx(5.0)


def test_ge_tilted_series_is_refused(qa_conversion):
    _, scans, qc = qa_conversion
    row = qc_row(qc, series_key(uid_of(QA_CT / "GE")))
    assert row["status"] == "excluded"
    assert "gantry tilt" in row["reason"] and row["tilt_deg"] == pytest.approx(18.5, abs=0.05)
    assert row["patient_id"] == "P02"
    assert "P02" not in set(scans["patient_id"])


def test_gantry_tilt_correct_is_not_supported_yet(tmp_path):
    with pytest.raises(HTCTInputError, match="gantry_tilt"):
        convert_tree(
            tmp_path,
            tmp_path / "c.csv",
            tmp_path,
            tmp_path / "q.tsv",
            tmp_path / "s.tsv",
            gantry_tilt="correct",
        )


def test_philips_scout_secondary_capture_and_dirfile_are_excluded(qa_conversion):
    _, _, qc = qa_conversion
    philips = QA_CT / "Philips_S21570"
    scout = qc_row(qc, series_key(uid_of(philips / "S1000")))
    assert scout["status"] == "excluded" and "localizer" in scout["reason"]
    capture = qc_row(qc, series_key(uid_of(philips / "S4010")))
    assert capture["status"] == "excluded" and "secondary capture" in capture["reason"]
    assert capture["n_files"] == len([p for p in (philips / "S4010").iterdir() if p.name != "DIRFILE"])
    for folder in ("S1000", "S2010", "S4010"):
        dirfile = qc_row(qc, file_key(f"Philips_S21570/{folder}/DIRFILE"))
        assert dirfile["status"] == "excluded" and "DICOMDIR" in dirfile["reason"]
    licence = qc_row(qc, file_key("LICENSE"))
    assert licence["reason"] == "not a DICOM file"


def test_every_file_of_the_tree_is_accounted_for(qa_conversion):
    _, _, qc = qa_conversion
    n_files = sum(1 for p in QA_CT.rglob("*") if p.is_file())
    assert qc["n_files"].sum() == n_files
    assert set(qc["status"]) == {"kept", "excluded"}
    assert qc.loc[qc["status"] == "excluded", "reason"].str.len().gt(0).all()


# ---------------------------------------------------------------------------------------------------
# Generated series: one tree with a case per QC rule
# ---------------------------------------------------------------------------------------------------

PATIENTS = {  # dicom_patient_id -> (patient_id, patient name written into the headers and folder names)
    "MRN-1001": ("A01", "Smithson^Alice"),
    "MRN-1002": ("B02", "Jonesworth^Bob"),
    "MRN-1003": ("C03", "Carterly^Carol"),
}


def build_tree(root: Path) -> dict[str, str]:
    """Write the generated cases; returns case name -> SeriesInstanceUID."""
    uids: dict[str, str] = {}

    def series(case: str, patient: str, **kwargs) -> list[Path]:
        _, name = PATIENTS.get(patient, ("", "Nobody^Known"))
        uids[case] = kwargs.setdefault("series_uid", generate_uid())
        folder = root / f"{name.replace('^', '_')}_19500101" / case
        return write_ct_series(folder, patient_id=patient, patient_name=name, **kwargs)

    study_a = generate_uid()
    series("good", "MRN-1001", study_uid=study_a, seed=1)
    series("thin_duplicate", "MRN-1001", study_uid=study_a, slice_thickness=1.0, seed=2)
    series("scaled", "MRN-1001", rescale=(0.5, -1024.0), study_date="20240301", seed=3)
    series("no_rescale", "MRN-1001", rescale=None, study_date="20240302", seed=4)
    series("rle", "MRN-1001", rle=True, study_date="20240303", seed=1)
    series("raw_dataset", "MRN-1001", raw_dataset=True, study_date="20240304", seed=5)
    # Patient B: three studies written in an order unlike their dates, to test the scan ranking.
    series("b_late", "MRN-1002", study_date="20240305", study_time="070000")
    series("b_first", "MRN-1002", study_date="20240301", study_time="080000")
    series("b_second", "MRN-1002", study_date="20240301", study_time="093000")
    # Faults (patient C, one study each).
    z = [5.0 * k for k in range(24)]
    series("missing_slice", "MRN-1003", positions_z=z[:10] + z[11:], study_date="20230101")
    series("duplicate_position", "MRN-1003", positions_z=z[:10] + [z[9]] + z[10:], study_date="20230102")
    series("mr", "MRN-1003", modality="MR", study_date="20230103")
    series("too_few", "MRN-1003", n_slices=5, study_date="20230104")
    uneven = np.cumsum([0.0] + [5.0, 5.3, 4.7] * 8)[:24]
    series("uneven", "MRN-1003", positions_z=list(uneven), study_date="20230105")
    series("sagittal", "MRN-1003", orientation=(0, 1, 0, 0, 0, -1), study_date="20230106")
    series(
        "scout",
        "MRN-1003",
        n_slices=1,
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        study_date="20230107",
    )
    truncated = series("truncated", "MRN-1003", study_date="20230108")
    truncated[5].write_bytes(truncated[5].read_bytes()[:-500])
    cut_header = series("cut_header", "MRN-1003", study_date="20230110")
    header_only = cut_header[3].read_bytes()
    cut_header[3].write_bytes(header_only[: header_only.find(b"\xe0\x7f\x10\x00")])  # cut before Pixel Data
    series("unknown_patient", "MRN-9999", study_date="20230109")
    (root / "Smithson_Alice_19500101" / "notes.txt").write_text("exported by Dr Who for Smithson^Alice\n")
    return uids


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("generated")
    uids = build_tree(tmp / "dicom")
    clinical = tmp / "clinical.csv"
    clinical.write_text(CLINICAL_HEADER + "".join(f"{pid},{mrn},1,60,F,none\n" for mrn, (pid, _) in PATIENTS.items())
                        + "D04,MRN-4004,0,50,M,none\n")  # fmt: skip
    scans = convert_tree(
        tmp / "dicom", clinical, tmp / "nifti", tmp / "qc" / "series.tsv", tmp / "qc" / "scans.tsv"
    )
    qc = pd.read_csv(
        tmp / "qc" / "series.tsv", sep="\t", dtype={"series_key": str, "patient_id": str, "scan_id": str}
    )
    return tmp, uids, scans, qc


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing_slice", "missing slices"),
        ("duplicate_position", "duplicate slice positions"),
        ("mr", "modality MR, not CT"),
        ("too_few", "too few slices (5 < min_slices 20)"),
        ("uneven", "uneven slice spacing"),
        ("sagittal", "not axial"),
        ("scout", "localizer"),
        ("truncated", "truncated pixel data (1 of 24 files"),
        ("cut_header", "missing pixel data (1 of 24 files"),
        ("unknown_patient", "patient not in the clinical sheet"),
        ("thin_duplicate", "duplicate series in study"),
    ],
)
def test_fault_is_excluded_with_reason(generated, case, reason):
    _, uids, _, qc = generated
    row = qc_row(qc, series_key(uids[case]))
    assert row["status"] == "excluded"
    assert reason in row["reason"]
    assert pd.isna(row["scan_id"])


def test_kept_series_hold_the_phantom_hu_in_ras(generated):
    """The 5 mm series of patient A's first study: HU voxels and the affine implied by its geometry."""
    _, uids, scans, _ = generated
    row = scans.set_index("series_key").loc[series_key(uids["good"])]
    image = nib.load(row["nifti"])
    hu = head_phantom(24, 32, 32, seed=1)  # [slice, row, column], slices written at z = 0, 5, ...
    # Columns run to patient left (-x in RAS) and rows to posterior (-y): RAS order flips both.
    assert np.array_equal(image.get_fdata(), hu.transpose(2, 1, 0)[::-1, ::-1, :])
    expected = np.diag([0.5, 0.5, 5.0, 1.0])
    expected[:3, 3] = [-(-8.0 + 31 * 0.5), -(-8.0 + 31 * 0.5), 0.0]  # RAS of the last row/column
    np.testing.assert_allclose(image.affine, expected, atol=1e-6)
    assert image.header.get_data_dtype() == np.int16
    assert int(image.header["qform_code"]) == int(image.header["sform_code"]) == 1


def test_rescale_storage_and_defaults(generated):
    _, uids, scans, qc = generated
    by_key = scans.set_index("series_key")
    scaled = nib.load(by_key.loc[series_key(uids["scaled"]), "nifti"])
    assert scaled.get_data_dtype() == np.int16
    assert (scaled.dataobj.slope, scaled.dataobj.inter) == (0.5, -1024.0)  # raw int16 + scl_slope/scl_inter
    assert np.array_equal(
        scaled.get_fdata(), head_phantom(24, 32, 32, seed=3).transpose(2, 1, 0)[::-1, ::-1, :]
    )
    plain = nib.load(by_key.loc[series_key(uids["no_rescale"]), "nifti"])
    assert np.array_equal(
        plain.get_fdata(), head_phantom(24, 32, 32, seed=4).transpose(2, 1, 0)[::-1, ::-1, :]
    )
    assert "assumed 1/0" in qc_row(qc, series_key(uids["no_rescale"]))["notes"]


def test_rle_and_preamble_less_files_convert(generated):
    _, uids, scans, _ = generated
    by_key = scans.set_index("series_key")
    rle = nib.load(by_key.loc[series_key(uids["rle"]), "nifti"]).get_fdata()
    good = nib.load(by_key.loc[series_key(uids["good"]), "nifti"]).get_fdata()
    assert np.array_equal(rle, good)  # same phantom (seed 1), once RLE-compressed
    raw = nib.load(by_key.loc[series_key(uids["raw_dataset"]), "nifti"]).get_fdata()
    assert np.array_equal(raw, head_phantom(24, 32, 32, seed=5).transpose(2, 1, 0)[::-1, ::-1, :])


def test_missing_codec_names_the_package(tmp_path, monkeypatch):
    write_ct_series(tmp_path / "dicom", rle=True, patient_id="X1")
    (tmp_path / "c.csv").write_text(CLINICAL_HEADER + "X,X1,0,50,M,none\n")
    monkeypatch.setattr(get_decoder(RLELossless), "_available", {})  # as if no RLE plugin were installed
    scans = convert_tree(
        tmp_path / "dicom", tmp_path / "c.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv"
    )
    qc = pd.read_csv(tmp_path / "q.tsv", sep="\t")
    assert scans.empty
    assert "pylibjpeg-rle" in qc.loc[0, "reason"] and "RLE Lossless" in qc.loc[0, "reason"]


def test_scan_ids_rank_studies_by_date_and_time(generated):
    _, uids, scans, _ = generated
    scan_of = dict(zip(scans["series_key"], scans["scan_id"], strict=True))
    assert scan_of[series_key(uids["b_first"])] == "B02_scan1"
    assert scan_of[series_key(uids["b_second"])] == "B02_scan2"
    assert scan_of[series_key(uids["b_late"])] == "B02_scan3"
    # Patient A: the two-series study is the earliest (20240101), then one study a day.
    assert scan_of[series_key(uids["good"])] == "A01_scan1"
    assert scan_of[series_key(uids["raw_dataset"])] == "A01_scan5"
    assert scans["scan_id"].is_unique
    assert set(scans.columns) >= {"label", "nifti", "slice_thickness_mm", "rows"}
    assert sorted(Path(p).name for p in scans["nifti"]) == sorted(f"{s}.nii.gz" for s in scans["scan_id"])


def test_no_phi_in_outputs(generated):
    tmp, _, _, _ = generated
    outputs = [*tmp.joinpath("nifti").glob("*.nii.gz"), *tmp.joinpath("qc").glob("*.tsv")]
    blob = b"".join(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in outputs)
    for mrn, (_, name) in PATIENTS.items():
        secrets = (mrn, name, name.split("^")[0], name.replace("^", "_"), "19500101", "Hospital of", "ACC-")
        for secret in secrets:
            assert secret.encode() not in blob, f"{secret!r} leaked into the outputs"
    assert b"MRN-9999" not in blob and b"notes.txt" not in blob and b"Dr Who" not in blob
    assert len(outputs) > 5


def test_patients_without_scan_are_reported(generated, caplog, tmp_path):
    tmp, _, _, qc = generated
    assert "D04" not in set(qc["patient_id"].dropna())  # in the sheet, no DICOM at all
    with caplog.at_level("WARNING", logger="htct.dicom.convert"):
        convert_tree(
            tmp / "dicom", tmp / "clinical.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv"
        )
    assert "D04" in caplog.text and "C03" in caplog.text  # C03 has only faulty series


def test_parallel_conversion_gives_the_same_tables(generated, tmp_path, monkeypatch):
    tmp, _, scans, qc = generated
    monkeypatch.setattr("htct.dicom.convert.HEADER_PROCESS_THRESHOLD", 1)  # headers in processes too
    parallel = convert_tree(tmp / "dicom", tmp / "clinical.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv",
                            threads=2)  # fmt: skip
    pd.testing.assert_frame_equal(parallel.drop(columns="nifti"), scans.drop(columns="nifti"))
    qc2 = pd.read_csv(
        tmp_path / "q.tsv", sep="\t", dtype={"series_key": str, "patient_id": str, "scan_id": str}
    )
    pd.testing.assert_frame_equal(qc2, qc)
    for scan_id in scans["scan_id"]:
        a = nib.load(tmp / "nifti" / f"{scan_id}.nii.gz")
        b = nib.load(tmp_path / "n" / f"{scan_id}.nii.gz")
        assert np.array_equal(a.get_fdata(), b.get_fdata()) and np.array_equal(a.affine, b.affine)


def test_fatal_input_errors_name_the_path(tmp_path):
    (tmp_path / "c.csv").write_text(CLINICAL_HEADER + "X,X1,0,50,M,none\n")
    with pytest.raises(HTCTInputError, match="DICOM folder not found"):
        convert_tree(
            tmp_path / "absent", tmp_path / "c.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv"
        )
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(HTCTInputError, match="no DICOM image found in .*empty"):
        convert_tree(
            tmp_path / "empty", tmp_path / "c.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv"
        )
    with pytest.raises(HTCTInputError, match="clinical sheet not found"):
        convert_tree(
            tmp_path / "empty", tmp_path / "nope.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv"
        )


def test_synthetic_cohort_converts_as_its_truth_says(tmp_path):
    """Extra check on htct.synth's cohort (skipped when that generator is not importable)."""
    try:
        from htct.synth import generate_cohort
    except ImportError as error:
        pytest.skip(f"htct.synth.generate_cohort not available: {error}")
    generate_cohort(tmp_path / "cohort", n_patients=6, seed=3, matrix=64, n_readers=2)
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    scans = convert_tree(
        cohort / "dicom", cohort / "clinical.csv", out / "nifti", out / "qc.tsv", out / "scans.tsv"
    )
    truth = pd.read_csv(cohort / "truth" / "scans.tsv", sep="\t", dtype={"scan_id": str})
    assert sorted(scans["scan_id"]) == sorted(truth["scan_id"])
    for scan in scans.itertuples():  # the truth masks are written in the grid the converter must produce
        image, mask = nib.load(scan.nifti), nib.load(cohort / "truth" / "masks" / f"{scan.scan_id}.nii.gz")
        assert image.shape == mask.shape
        np.testing.assert_allclose(image.affine, mask.affine, atol=1e-4)
    phi = pd.read_csv(cohort / "truth" / "phi.tsv", sep="\t", dtype=str)
    blob = b"".join(
        gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        for p in [*out.joinpath("nifti").glob("*.nii.gz"), out / "qc.tsv", out / "scans.tsv"]
    )
    for keyword, value in zip(phi["keyword"], phi["value"].fillna(""), strict=True):
        if len(value) >= 6:  # shorter values could occur by chance in the voxel bytes
            assert value.encode() not in blob, f"{keyword} leaked into the outputs"


@pytest.mark.parametrize(
    "orientation",
    [(1, 0, 0, 0, 1, 0), (0, 1, 0, 1, 0, 0), (-1, 0, 0, 0, 1, 0), (1, 0, 0, 0, -1, 0)],
    ids=["standard", "rows-along-y", "mirrored-x", "normal-down"],
)
def test_any_axial_orientation_equals_dcm2niix(tmp_path, orientation):
    """Generated 24 x 40 x 32 series in several in-plane orientations: voxels and affine as dcm2niix's.

    Covers the axis flips and the permutation to RAS voxel order (compared after both images are
    reoriented with nibabel.as_closest_canonical, arrays exactly, affines within 1e-4 mm).
    """
    binary = dcm2niix_binary()
    if binary is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    hu = head_phantom(24, 40, 32, seed=7)
    write_ct_series(
        tmp_path / "dicom", hu=hu, orientation=orientation, patient_id="O1", origin_xy=(-3.0, 4.0)
    )
    (tmp_path / "c.csv").write_text(CLINICAL_HEADER + "O,O1,0,50,M,none\n")
    scans = convert_tree(
        tmp_path / "dicom", tmp_path / "c.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv"
    )
    subprocess.run([binary, "-z", "y", "-f", "ref", "-o", str(tmp_path), str(tmp_path / "dicom")],
                   check=True, capture_output=True)  # fmt: skip
    ours, reference = canonical(Path(scans.loc[0, "nifti"])), canonical(tmp_path / "ref.nii.gz")
    assert nib.aff2axcodes(nib.load(scans.loc[0, "nifti"]).affine) == ("R", "A", "S")
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-4)
    assert np.array_equal(ours.get_fdata(), reference.get_fdata())


def test_slice_specific_rescale_is_stored_as_float32(tmp_path):
    """Slopes that differ between slices: float32 HU (no common NIfTI scaling can represent them)."""
    from htct.dicom.discover import read_header
    from htct.dicom.series import measure_geometry
    from htct.dicom.volume import build_hu_volume, write_nifti

    paths = write_ct_series(tmp_path / "dicom", n_slices=6, rows=8, columns=8, seed=9)
    headers = [read_header(p, tmp_path / "dicom") for p in paths]
    for k, header in enumerate(headers):
        header.rescale_slope, header.rescale_intercept = (1.0, -1024.0) if k % 2 else (0.5, -1000.25)
    volume = build_hu_volume(headers, measure_geometry(headers))
    image = nib.load(write_nifti(volume, tmp_path / "v.nii.gz"))
    assert image.get_data_dtype() == np.float32
    stored = np.stack([pydicom.dcmread(p).pixel_array for p in paths]).astype(float)  # [slice, row, column]
    slopes = np.array([h.rescale_slope for h in headers])[:, None, None]
    intercepts = np.array([h.rescale_intercept for h in headers])[:, None, None]
    expected = (stored * slopes + intercepts).astype(np.float32).transpose(2, 1, 0)[::-1, ::-1, :]
    assert np.array_equal(image.get_fdata(), expected)
