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
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless, generate_uid

from htct.dicom import convert_tree, file_key, series_key
from htct.errors import HTCTInputError
from htct.preprocess.brain import head_mask
from htct.testing.dicom import head_phantom, write_ct_series

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


def inside_head_difference(ours: nib.Nifti1Image, reference: nib.Nifti1Image) -> np.ndarray:
    """|ours - reference| in HU over the reference's head mask (htct.preprocess.brain.head_mask).

    Both images in RAS voxel order (``canonical``) on the same grid (checked by the caller).
    """
    reference_hu = reference.get_fdata()
    spacing = reference.header.get_zooms()
    head = np.moveaxis(head_mask(np.moveaxis(reference_hu, 2, 0), spacing[0], spacing[1]), 0, 2)
    return np.abs(ours.get_fdata() - reference_hu)[head]


def test_ge_tilted_series_is_corrected_as_dcm2niix_does(qa_conversion, tmp_path):
    """GE, 18.5 deg tilt, gaps 1.08-6.99 mm: the same grid as dcm2niix's ``_Tilt_Eq`` output, HU within 1.

    dcm2niix writes the tilt-corrected, gap-equalised volume as ``*_Tilt_Eq_1.nii`` (512 x 611 x 56:
    rows widened to hold the shifted slices, 56 slices of 2.62 mm). Goal: mean absolute difference
    inside the head <= 2 HU; reached: ~0.18 HU, every voxel within 1 HU (both round interpolated HU).
    """
    binary = dcm2niix_binary()
    if binary is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    _, scans, qc = qa_conversion
    subprocess.run([binary, "-z", "n", "-b", "n", "-f", "ref", "-o", str(tmp_path), str(QA_CT / "GE")],
                   check=True, capture_output=True)  # fmt: skip
    reference = canonical(tmp_path / "ref_Tilt_Eq_1.nii")
    row = scans.set_index("scan_id").loc["P02_scan1"]
    ours = canonical(Path(row["nifti"]))
    assert ours.shape == reference.shape == (512, 611, 56)
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-3)
    difference = inside_head_difference(ours, reference)
    assert difference.size > 4_000_000  # the head, not a few voxels
    assert difference.mean() <= 0.5 and np.percentile(difference, 95) <= 1.0 and difference.max() <= 1.0
    assert (row["n_slices"], row["rows"], row["columns"]) == (56, 611, 512)
    assert row["slice_spacing_mm"] == pytest.approx(2.6198, abs=1e-3)
    qc_ge = qc_row(qc, series_key(uid_of(QA_CT / "GE")))
    assert qc_ge["status"] == "kept" and qc_ge["tilt_deg"] == pytest.approx(18.5, abs=0.05)
    assert "gantry tilt 18.50 deg" in qc_ge["correction"]
    assert "uneven gaps 1.08-7.00 mm equalised to 2.620 mm (28 -> 56 slices)" in qc_ge["correction"]


def test_ge_tilted_series_is_refused_when_asked(tmp_path):
    if not QA_CT.is_dir():
        pytest.skip(f"shared test data not found at {QA_CT} (see shared/data/README.md)")
    (tmp_path / "c.csv").write_text(CLINICAL_HEADER + "P02,QMNx85rKkkg,0,64,F,antiplatelet\n")
    scans = convert_tree(QA_CT / "GE", tmp_path / "c.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv",
                         gantry_tilt="refuse")  # fmt: skip
    qc = pd.read_csv(tmp_path / "q.tsv", sep="\t")
    assert scans.empty and qc.loc[0, "status"] == "excluded"
    assert (
        "gantry tilt 18.5 deg" in qc.loc[0, "reason"] and "convert.gantry_tilt: refuse" in qc.loc[0, "reason"]
    )


def test_unknown_geometry_policy_is_refused(tmp_path):
    for key, value in (("gantry_tilt", "ignore"), ("uneven_spacing", "interpolate")):
        with pytest.raises(HTCTInputError, match=f"convert.{key}: '{value}' is not one of"):
            convert_tree(tmp_path, tmp_path / "c.csv", tmp_path, tmp_path / "q.tsv", tmp_path / "s.tsv",
                         **{key: value})  # fmt: skip


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


UNEVEN_Z = np.cumsum([0.0] + [5.0, 5.3, 4.7] * 8)[:24]  # slice positions of the "uneven" case


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
    series("uneven", "MRN-1001", positions_z=list(UNEVEN_Z), study_date="20240305")
    series(
        "deflated", "MRN-1001", transfer_syntax=DeflatedExplicitVRLittleEndian, study_date="20240306", seed=6
    )
    series("big_endian", "MRN-1001", transfer_syntax=ExplicitVRBigEndian, study_date="20240307", seed=7)
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


def test_deflated_and_big_endian_files_convert(generated):
    """Complete files in the two other uncompressed syntaxes: decoded by pydicom, not "missing pixel data"."""
    tmp, uids, scans, _ = generated
    by_key = scans.set_index("series_key")
    for case, seed in (("deflated", 6), ("big_endian", 7)):
        folder = next(tmp.joinpath("dicom").glob(f"*/{case}"))
        syntax = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).file_meta.TransferSyntaxUID
        assert syntax == {"deflated": DeflatedExplicitVRLittleEndian, "big_endian": ExplicitVRBigEndian}[case]
        hu = nib.load(by_key.loc[series_key(uids[case]), "nifti"]).get_fdata()
        assert np.array_equal(hu, head_phantom(24, 32, 32, seed=seed).transpose(2, 1, 0)[::-1, ::-1, :]), case


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


# ---------------------------------------------------------------------------------------------------
# Studies: ranking, and the choice between several acceptable series
# ---------------------------------------------------------------------------------------------------


def convert_one_patient(tmp_path: Path, write) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write a patient's series with ``write(folder)`` (patient id "K1"), convert; (scans, qc)."""
    write(tmp_path / "dicom")
    (tmp_path / "c.csv").write_text(CLINICAL_HEADER + "K,K1,1,60,F,none\n")
    scans = convert_tree(
        tmp_path / "dicom", tmp_path / "c.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv"
    )
    qc = pd.read_csv(tmp_path / "q.tsv", sep="\t", dtype={"series_key": str, "scan_id": str})
    return scans, qc.set_index("series_key")


def test_study_is_ranked_once_when_its_scout_has_a_later_study_time(tmp_path):
    """A scout whose StudyTime is later than its study's axial series (seen in real exports): one
    study, one rank; the patient's only two studies are scan1 and scan2, no number skipped."""
    study, uids = generate_uid(), {"axial": generate_uid(), "scout": generate_uid(), "next": generate_uid()}

    def write(root: Path) -> None:
        write_ct_series(
            root / "axial", patient_id="K1", study_uid=study, series_uid=uids["axial"], study_time="092815"
        )
        write_ct_series(root / "scout", patient_id="K1", study_uid=study, series_uid=uids["scout"], n_slices=1,
                        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), study_time="093500")  # fmt: skip
        write_ct_series(
            root / "next",
            patient_id="K1",
            series_uid=uids["next"],
            study_date="20240102",
            study_time="080000",
        )

    scans, qc = convert_one_patient(tmp_path, write)
    assert list(scans["scan_id"]) == ["K_scan1", "K_scan2"]
    assert list(scans["series_key"]) == [series_key(uids["axial"]), series_key(uids["next"])]
    assert (
        qc.loc[series_key(uids["scout"]), "study_rank"]
        == qc.loc[series_key(uids["axial"]), "study_rank"]
        == 1
    )


@pytest.mark.parametrize(
    ("soft", "bone", "evidence"),
    [
        ({"convolution_kernel": "STANDARD"}, {"convolution_kernel": "BONE"}, ("ConvolutionKernel STANDARD", "ConvolutionKernel BONE")),
        ({"convolution_kernel": ["Hr38s", "3"]}, {"convolution_kernel": "H70h"}, ("ConvolutionKernel Hr38s", "ConvolutionKernel H70h")),
        ({"convolution_kernel": "UB"}, {"convolution_kernel": "D"}, ("ConvolutionKernel UB", "ConvolutionKernel D")),
        ({"convolution_kernel": "FC21"}, {"convolution_kernel": "FC30"}, ("ConvolutionKernel FC21", "ConvolutionKernel FC30")),
        ({"series_description": "Head STD 2.5mm"}, {"series_description": "Head Bone 5mm"}, ("SeriesDescription word STD", "SeriesDescription word BONE")),
    ],
    ids=["GE", "Siemens", "Philips", "Canon", "description"],
)  # fmt: skip
def test_soft_tissue_reconstruction_is_kept_over_bone(tmp_path, soft, bone, evidence):
    """One study, the same acquisition reconstructed twice: 5 mm with a bone kernel (closest to the
    preferred 5 mm, so kept by thickness alone) and 2.5 mm with a soft-tissue kernel, which is kept;
    the QC reason of the bone series says which series was kept and why."""
    study, uids = generate_uid(), {"soft": generate_uid(), "bone": generate_uid()}

    def write(root: Path) -> None:
        write_ct_series(root / "soft", patient_id="K1", study_uid=study, series_uid=uids["soft"], n_slices=48,
                        slice_thickness=2.5, **soft)  # fmt: skip
        write_ct_series(root / "bone", patient_id="K1", study_uid=study, series_uid=uids["bone"], n_slices=24,
                        slice_thickness=5.0, **bone)  # fmt: skip

    scans, qc = convert_one_patient(tmp_path, write)
    assert list(scans["series_key"]) == [series_key(uids["soft"])]
    kept, excluded = qc.loc[series_key(uids["soft"])], qc.loc[series_key(uids["bone"])]
    assert kept["reconstruction"] == f"soft-tissue reconstruction ({evidence[0]})"
    assert excluded["reconstruction"] == f"bone reconstruction ({evidence[1]})"
    assert excluded["reason"] == (
        f"duplicate series in study (kept series {series_key(uids['soft'])}: soft-tissue reconstruction "
        f"({evidence[0]}) preferred over this bone reconstruction ({evidence[1]}))"
    )


def test_duplicate_reason_names_thickness_then_slice_count(generated):
    """Same (unknown) reconstruction: the series closest to 5 mm is kept, and the reason says so."""
    _, uids, _, qc = generated
    reason = qc_row(qc, series_key(uids["thin_duplicate"]))["reason"]
    assert reason == (
        f"duplicate series in study (kept series {series_key(uids['good'])}: its 5 mm slices are closer "
        "to 5 mm than these 1 mm)"
    )


# ---------------------------------------------------------------------------------------------------
# Gantry tilt and uneven gaps on series of known geometry
# ---------------------------------------------------------------------------------------------------

TILT_DEG = 20.0


def linear_hu(lps_mm: np.ndarray) -> np.ndarray:
    """The HU field of the known-geometry tests: linear in LPS millimetres, so linear interpolation of
    it is exact and every resampled voxel must hold the field's value at the voxel's position."""
    return 2.0 * lps_mm[..., 0] + 3.0 * lps_mm[..., 1] - 1.5 * lps_mm[..., 2] + 40.0


def voxel_lps(image: nib.Nifti1Image) -> np.ndarray:
    """LPS position (mm) of every voxel, shape [i, j, k, 3]."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in image.shape], indexing="ij"), axis=-1)
    ras = index @ image.affine[:3, :3].T + image.affine[:3, 3]
    return ras * [-1.0, -1.0, 1.0]


@pytest.mark.parametrize("gaps", [[4.0] * 23, [3.0] * 12 + [5.0] * 11], ids=["even-gaps", "uneven-gaps"])
def test_tilted_series_of_known_geometry_is_resampled_exactly(tmp_path, gaps):
    """A 20 deg tilt about x (GE-like: the table moves along z, the slice planes lean): every voxel of
    the corrected volume holds the field at its own position (within the 1 HU of rounding), on an
    orthogonal grid along the slice normal with dcm2niix's spacing rule."""
    theta = np.radians(TILT_DEG)
    row_cosine, column_cosine = np.array([1.0, 0.0, 0.0]), np.array([0.0, np.cos(theta), -np.sin(theta)])
    normal = np.cross(row_cosine, column_cosine)
    distance = np.concatenate([[0.0], np.cumsum(gaps)])  # along the normal
    origins = np.array([-20.0, -24.0, 0.0]) + (distance / np.cos(theta))[:, None] * [0.0, 0.0, 1.0]
    rows, columns = 48, 40  # 1 mm pixels
    r, c = np.mgrid[:rows, :columns]
    pixels = origins[:, None, None, :] + c[..., None] * row_cosine + r[..., None] * column_cosine
    write_ct_series(tmp_path / "dicom", hu=np.round(linear_hu(pixels)), positions_z=list(origins[:, 2]),
                    origin_xy=(-20.0, -24.0), orientation=(*row_cosine, *column_cosine), pixel_spacing=1.0,
                    slice_thickness=[*gaps, gaps[-1]], gantry_tilt=TILT_DEG, patient_id="T1")  # fmt: skip
    (tmp_path / "c.csv").write_text(CLINICAL_HEADER + "T,T1,0,50,M,none\n")
    scans = convert_tree(
        tmp_path / "dicom", tmp_path / "c.csv", tmp_path / "n", tmp_path / "q.tsv", tmp_path / "s.tsv"
    )
    image = nib.load(scans.loc[0, "nifti"])

    extent = distance[-1]
    n_expected = (
        len(distance) if len(set(gaps)) == 1 else min(int(np.ceil(extent / min(gaps))) + 1, 2 * len(distance))
    )
    spacing = extent / (n_expected - 1)
    assert image.shape[2] == n_expected == scans.loc[0, "n_slices"]
    axes = image.affine[:3, :3] * np.array([-1.0, -1.0, 1.0])[:, None]  # LPS directions of i, j, k
    # (positions are written with 4 decimals, cosines with 6)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=0), [1.0, 1.0, spacing], atol=1e-4)
    gram = axes.T @ axes
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-4)  # orthogonal grid
    np.testing.assert_allclose(np.abs(axes[:, 2] @ normal), spacing, atol=1e-4)  # slices along the normal

    # Voxels inside the acquired slab: between the first and last plane and, on both planes around
    # the voxel, within the slice's rows and columns.
    lps = voxel_lps(image)
    depth = (lps - origins[0]) @ normal
    upper = np.clip(np.searchsorted(distance, depth), 1, len(distance) - 1)
    covered = (depth >= -1e-6) & (depth <= extent + 1e-6)
    for k in (upper - 1, upper):
        relative = lps - origins[k]
        covered &= (relative @ column_cosine >= 0) & (relative @ column_cosine <= rows - 1)
        covered &= (relative @ row_cosine >= 0) & (relative @ row_cosine <= columns - 1)
    assert covered.mean() > 0.5
    error = np.abs(image.get_fdata() - linear_hu(lps))[covered]
    assert error.max() <= 1.0 and error.mean() <= 0.5
    qc = pd.read_csv(tmp_path / "q.tsv", sep="\t")
    assert "gantry tilt 20.00 deg resampled to an orthogonal grid" in qc.loc[0, "correction"]
    assert ("uneven gaps 3.00-5.00 mm" in qc.loc[0, "correction"]) == (len(set(gaps)) > 1)


def test_uneven_gaps_are_equalised_or_refused(generated):
    """Patient A's series with gaps of 5, 5.3 and 4.7 mm: linear interpolation along z onto even
    spacing (the smallest gap, at most twice the slices); refused with convert.uneven_spacing: refuse."""
    tmp, uids, scans, qc = generated
    row = scans.set_index("series_key").loc[series_key(uids["uneven"])]
    z = UNEVEN_Z
    n_slices = min(int(np.ceil(z[-1] / 4.7)) + 1, 2 * len(z))
    output_z = np.arange(n_slices) * z[-1] / (n_slices - 1)
    hu = head_phantom(24, 32, 32, seed=0)  # [slice, row, column]
    expected = np.stack([np.interp(output_z, z, hu[:, i, j]) for i, j in np.ndindex(32, 32)], axis=-1)
    expected = expected.reshape(n_slices, 32, 32).transpose(2, 1, 0)[::-1, ::-1, :]  # RAS voxel order
    image = nib.load(row["nifti"])
    assert image.shape == (32, 32, n_slices) and row["n_slices"] == n_slices
    assert np.abs(image.get_fdata() - expected).max() <= 0.5 + 1e-3  # the output rounds to int16 HU
    assert image.affine[2, 2] == pytest.approx(z[-1] / (n_slices - 1))
    assert "uneven gaps 4.70-5.30 mm equalised" in qc_row(qc, series_key(uids["uneven"]))["correction"]

    from htct.dicom.discover import read_header
    from htct.dicom.series import classify_series

    folder = next(tmp.joinpath("dicom").glob("*/uneven"))
    headers = [read_header(p, folder) for p in sorted(folder.iterdir())]
    verdict = classify_series(headers, 20, "correct", 0.1, uneven_spacing="refuse")
    assert verdict.reason.startswith("uneven slice spacing (gaps 4.70-5.30 mm")


# --- Own-cohort rough edges (issue 26): identical copies of a slice, a file cut before its series UID ---


def _convert_generated(tmp_path: Path, patients: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    clinical = tmp_path / "clinical.csv"
    clinical.write_text(
        CLINICAL_HEADER + "".join(f"{pid},{mrn},1,60,F,none\n" for mrn, pid in patients.items())
    )
    scans = convert_tree(
        tmp_path / "dicom", clinical, tmp_path / "nifti", tmp_path / "qc.tsv", tmp_path / "s.tsv"
    )
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t", dtype=str, keep_default_na=False)
    return scans, qc


def test_identical_copy_of_a_slice_is_dropped_with_a_note_and_a_conflict_excludes(tmp_path):
    dicom = tmp_path / "dicom"
    uids = {case: generate_uid() for case in ("same_sop", "new_sop", "conflict")}
    files = {
        case: write_ct_series(dicom / case, patient_id=f"MRN-{k}", series_uid=uid, seed=k)
        for k, (case, uid) in enumerate(uids.items())
    }
    shutil.copyfile(files["same_sop"][5], dicom / "same_sop" / "copy_of_slice6.dcm")  # the same object twice
    for case, change_pixels in (("new_sop", False), ("conflict", True)):
        ds = pydicom.dcmread(files[case][7])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()  # re-sent with a new UID
        if change_pixels:
            stored = ds.pixel_array.copy()
            stored[10, 10] += 50
            ds.PixelData = stored.tobytes()
        ds.save_as(dicom / case / "resent.dcm")
    scans, qc = _convert_generated(tmp_path, {"MRN-0": "A01", "MRN-1": "A02", "MRN-2": "A03"})
    assert sorted(scans["patient_id"]) == ["A01", "A02"]
    for case, how in (("same_sop", "same SOPInstanceUID"), ("new_sop", "another SOPInstanceUID")):
        row = qc_row(qc, series_key(uids[case]))
        assert row["status"] == "kept" and (row["n_files"], row["n_slices"]) == ("25", "24")
        assert row["notes"].startswith(
            f"1 identical copy of a slice dropped (same position and pixels as another file, {how})"
        )
    conflict = qc_row(qc, series_key(uids["conflict"]))
    assert conflict["status"] == "excluded" and conflict["n_files"] == "25"
    assert conflict["reason"].startswith("duplicate slice positions (1 slice(s) at an already used position)")
    assert sum(int(n) for n in qc["n_files"]) == sum(1 for p in dicom.rglob("*") if p.is_file())


def test_edge_slice_cut_before_its_series_uid_is_linked_to_its_patient_and_series(tmp_path):
    dicom = tmp_path / "dicom"
    uids = {"A01": generate_uid(), "A02": generate_uid()}
    top = write_ct_series(
        dicom / "a", patient_id="MRN-1", series_uid=uids["A01"], positions_z=range(0, 120, 5)
    )
    bottom = write_ct_series(
        dicom / "b", patient_id="MRN-2", series_uid=uids["A02"], positions_z=range(0, 120, 5)
    )
    data = top[-1].read_bytes()  # the top slice: PatientID was written, the SeriesInstanceUID not
    top[-1].write_bytes(data[: data.find(b"\x20\x00\x0e\x00")])
    bottom[0].write_bytes(bottom[0].read_bytes()[:200])  # the bottom slice: cut inside its file meta
    scans, qc = _convert_generated(tmp_path, {"MRN-1": "A01", "MRN-2": "A02"})
    assert sorted(scans["patient_id"]) == ["A01", "A02"] and set(scans["n_slices"]) == {23}
    for patient, broken in (("A01", top[-1]), ("A02", bottom[0])):
        key = file_key(broken.relative_to(dicom))
        series = qc_row(qc, series_key(uids[patient]))
        assert series["status"] == "kept" and series["n_slices"] == "23"
        assert series["notes"].startswith(
            f"23 of 24 slices: 1 unreadable file (series_key {key} in this table)"
        )
        row = qc_row(qc, key)
        assert row["patient_id"] == patient and row["status"] == "excluded"
        assert row["reason"] == (
            f"DICOM file without SeriesInstanceUID (file of {broken.stat().st_size} bytes that ends before its "
            f"pixel data: a slice of series {series_key(uids[patient])} in its folder?)"
        )
