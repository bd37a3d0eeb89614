"""Bad input, as a user meets it: every fault ends as a QC row with its reason or one HTCT-ERROR line.

A corpus of faulty DICOM files and sheets is generated in a temporary folder and run through the real
workflow (`snakemake` on a copy of it, convert -> preprocess -> split); the tests read what the user
reads: results/qc/series.tsv, results/qc/patients.tsv, results/arrays/index.tsv, the job logs and
Snakemake's stderr. The converter's rules themselves are unit-tested in test_dicom.py.
"""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml
from conftest import copy_workflow
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, SecondaryCaptureImageStorage, generate_uid

from htct.dicom import file_key, series_key
from htct.errors import HTCTInputError
from htct.sheets import load_clinical, load_readers
from htct.testing.dicom import write_ct_series

pytestmark = pytest.mark.slow  # the corpus goes through a real Snakemake run (10-30 s on 2 cores)

CLINICAL_HEADER = "patient_id,dicom_patient_id,label,age,sex,medication\n"
# patient_id -> (DICOM PatientID, label). Two classes of four patients with a kept scan (the split
# needs both labels), F09 whose every series is faulty, N10 who has no DICOM at all.
PATIENTS = {
    "P01": ("MRN-01", 0),
    "P02": ("MRN-02", 1),
    "P03": ("MRN-03", 0),
    "P04": ("MRN-04", 1),
    "P05": ("MRN-05", 0),
    "P06": ("MRN-06", 1),
    "P07": ("MRN-07", 0),
    "P08": ("MRN-08", 1),
    "F09": ("MRN-09", 0),
    "N10": ("MRN-10", 1),
}
SERIES = {"rows": 64, "columns": 64, "pixel_spacing": 3.0, "origin_xy": (-96.0, -96.0)}  # a 19 cm head FOV


def jpeg_lossless_sv1(image: np.ndarray) -> bytes:
    """Encode a 16-bit greyscale image as JPEG Lossless, process 14, selection value 1 (ITU-T T.81, H).

    Hand-written because no encoder for this transfer syntax is installed (pydicom 3 has none;
    pylibjpeg-libjpeg only decodes) and real PACS exports use it a lot; pylibjpeg decodes the result
    (checked in test_compressed_series_are_decoded).
    """
    rows, columns = image.shape
    x = image.astype(np.int64)
    prediction = np.empty_like(x)
    prediction[0, 0] = 1 << 15
    prediction[0, 1:] = x[0, :-1]  # first row: left neighbour
    prediction[1:, 0] = x[:-1, 0]  # first column: pixel above
    prediction[1:, 1:] = x[1:, :-1]  # selection value 1: left neighbour
    difference = (x - prediction) % 65536
    difference = np.where(difference >= 32768, difference - 65536, difference).ravel()
    out = bytearray()
    bits, n_bits = 0, 0

    def put(value: int, length: int) -> None:
        nonlocal bits, n_bits
        bits = (bits << length) | (value & ((1 << length) - 1))
        n_bits += length
        while n_bits >= 8:
            n_bits -= 8
            byte = (bits >> n_bits) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0x00)  # byte stuffing
        bits &= (1 << n_bits) - 1

    # One Huffman table: the 17 difference categories (SSSS 0..16) get the 5-bit codes 0..16.
    for d in difference.tolist():
        if d == -32768:
            put(16, 5)  # SSSS 16 has no extra bits
            continue
        ssss = abs(d).bit_length()
        put(ssss, 5)
        if ssss:
            put(d if d >= 0 else d + (1 << ssss) - 1, ssss)
    if n_bits:
        put((1 << (8 - n_bits)) - 1, 8 - n_bits)  # pad the last byte with 1-bits

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">HH", marker, len(body) + 2) + body

    dht = bytes([0x00, 0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17))
    sof3 = struct.pack(">BHHB", 16, rows, columns, 1) + bytes([1, 0x11, 0])
    sos = bytes([1, 1, 0x00, 1, 0, 0])  # one component, table 0, Ss = predictor 1, Se = 0, Ah/Al = 0
    return (
        b"\xff\xd8" + segment(0xFFC4, dht) + segment(0xFFC3, sof3) + segment(0xFFDA, sos) + out + b"\xff\xd9"
    )


def recompress(paths: list[Path], transfer_syntax: str) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        if transfer_syntax == JPEGLosslessSV1:
            ds.PixelData = encapsulate([jpeg_lossless_sv1(ds.pixel_array)])
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        else:
            ds.compress(transfer_syntax, encoding_plugin="pylibjpeg")
        ds.save_as(path, enforce_file_format=True)


def tilt(paths: list[Path], degrees: float) -> None:
    """Shear the series like a tilted gantry: each slice shifted along y by z * tan(tilt)."""
    for path in paths:
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x:.4f}", f"{y + z * math.tan(math.radians(degrees)):.4f}", f"{z:.4f}"]
        ds.GantryDetectorTilt = degrees
        ds.save_as(path, enforce_file_format=True)


def build_corpus(dicom: Path) -> dict[str, str]:
    """Write the corpus; returns case -> SeriesInstanceUID (or, for single files, the path relative to dicom)."""
    cases: dict[str, str] = {}

    def series(case: str, patient_id: str, folder: str | None = None, **kwargs) -> list[Path]:
        cases[case] = kwargs.setdefault("series_uid", generate_uid())
        dicom_patient_id = PATIENTS[patient_id][0] if patient_id in PATIENTS else patient_id
        target = dicom / (folder or f"{patient_id}_{case}")
        return write_ct_series(
            target, patient_id=dicom_patient_id, patient_name=f"Name^{case}", **SERIES | kwargs
        )

    series("twenty_slices", "P01", n_slices=20, seed=1)
    series("twentyseven_slices", "P02", n_slices=27, seed=2)
    (dicom / "P02_twentyseven_slices" / "notes.txt").write_text("exported by the PACS\n")
    (dicom / "P02_twentyseven_slices" / "IM9999.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    cases["notes"] = "P02_twentyseven_slices/notes.txt"
    cases["not_dicom"] = "P02_twentyseven_slices/IM9999.dcm"
    # Two studies of one patient in one folder, file names interleaved (a flat PACS export).
    series("mixed_a", "P03", folder="P03_flat", file_names=[f"IM{k:04d}a" for k in range(24)], seed=3)
    series("mixed_b", "P03", folder="P03_flat", file_names=[f"IM{k:04d}b" for k in range(24)],
           study_date="20240201", seed=4)  # fmt: skip
    series("rle", "P04", rle=True, seed=5)
    recompress(series("jpeg2000", "P05", seed=6), JPEG2000Lossless)
    recompress(series("jpeg_lossless", "P06", seed=7), JPEGLosslessSV1)
    series("no_rescale", "P07", rescale=None, seed=8)
    study = generate_uid()
    series("with_scout", "P08", study_uid=study, seed=9)
    series("scout", "P08", study_uid=study, n_slices=1, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))

    # Patient F09: one fault per study.
    z = [5.0 * k for k in range(24)]
    truncated = series("truncated", "F09", study_date="20230101")
    truncated[7].write_bytes(truncated[7].read_bytes()[:-777])
    series("missing_slice", "F09", positions_z=z[:12] + z[13:], study_date="20230102")
    series("duplicate_position", "F09", positions_z=z[:12] + [z[11]] + z[12:], study_date="20230103")
    series("secondary_capture", "F09", sop_class_uid=SecondaryCaptureImageStorage, study_date="20230104")
    series("mr", "F09", modality="MR", study_date="20230105")
    tilt(series("gantry_tilt", "F09", study_date="20230106"), 15.0)
    uneven = np.cumsum([0.0] + [5.0, 5.4, 4.6] * 8)[:24]
    series("uneven_spacing", "F09", positions_z=list(uneven), study_date="20230107")
    series("too_few", "F09", n_slices=12, study_date="20230108")
    series("unknown_patient", "MRN-99")
    cut = dicom / "cut_header.dcm"  # a copy interrupted inside its header
    cut.write_bytes(truncated[0].read_bytes()[:200])
    cases["cut_header"] = "cut_header.dcm"
    return cases


def write_config(path: Path, data: Path, **overrides) -> Path:
    config = {
        "data": {
            "synthetic": False,
            "dicom_dir": str(data / "dicom"),
            "clinical": str(data / "clinical.csv"),  # no readers sheet, lesion masks or truth: the defaults
        },
        # The corpus's faults include a tilted and an unevenly spaced series: refused on request here
        # (the defaults resample them; tests/test_dicom.py checks that).
        "convert": {"gantry_tilt": "refuse", "uneven_spacing": "refuse"},
        "preprocess": {"size": 32},
        "split": {"seed": 7, "test_fraction": 0.34, "val_fraction": 0.3},
    }
    for section, values in overrides.items():
        config[section] = config.get(section, {}) | values
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(workdir: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    # Targets before --configfile, which takes every following word as a config file.
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", str(configfile)]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)


def clinical_csv(path: Path, extra_rows: str = "") -> Path:
    rows = "".join(
        f"{pid},{mrn},{label},{60 + i},F,none\n" for i, (pid, (mrn, label)) in enumerate(PATIENTS.items())
    )
    path.write_text(CLINICAL_HEADER + rows + extra_rows)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus through convert -> preprocess -> split in a real Snakemake run."""
    root = tmp_path_factory.mktemp("bad_input")
    cases = build_corpus(root / "data" / "dicom")
    clinical_csv(root / "data" / "clinical.csv")
    workdir = copy_workflow(root / "workflow")
    config = write_config(workdir / "corpus.yaml", root / "data")
    result = snakemake(
        workdir, config, "results/qc/patients.tsv", "results/split/split.tsv", "results/arrays/index.tsv"
    )
    logs = {log.name: log.read_text() for log in (workdir / "logs").rglob("*.log")}
    assert result.returncode == 0, f"{result.stderr[-4000:]}\n{logs}"
    qc = pd.read_csv(workdir / "results/qc/series.tsv", sep="\t", dtype=str, keep_default_na=False)
    return root, workdir, cases, qc, logs


def qc_reason(qc: pd.DataFrame, key: str) -> str:
    rows = qc[qc["series_key"] == key]
    assert len(rows) == 1, f"{key}: {len(rows)} QC rows"
    return rows.iloc[0]["status"] + ": " + rows.iloc[0]["reason"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("truncated", "excluded: truncated pixel data (1 of 24 files end early)"),
        ("missing_slice", "excluded: missing slices (gap of 10.00 mm where spacing is 5.00 mm; ~1 missing)"),
        (
            "duplicate_position",
            "excluded: duplicate slice positions (1 slice(s) at an already used position)",
        ),
        (
            "secondary_capture",
            "excluded: secondary capture (Secondary Capture Image Storage); only CT Image Storage is converted",
        ),
        ("mr", "excluded: modality MR, not CT"),
        ("scout", "excluded: scout/localizer (ImageType LOCALIZER)"),
        (
            "gantry_tilt",
            "excluded: gantry tilt 15.0 deg (GantryDetectorTilt 15); sheared slices are refused "
            "(convert.gantry_tilt: refuse)",
        ),
        (
            "uneven_spacing",
            "excluded: uneven slice spacing (gaps 4.60-5.40 mm, more than max_spacing_deviation_mm",
        ),
        ("too_few", "excluded: too few slices (12 < min_slices 20)"),
        (
            "unknown_patient",
            "excluded: patient not in the clinical sheet (PatientID matches no dicom_patient_id)",
        ),
    ],
)
def test_faulty_series_is_excluded_with_its_reason(corpus, case, reason):
    _, _, cases, qc, _ = corpus
    assert qc_reason(qc, series_key(cases[case])).startswith(reason)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("notes", "excluded: not a DICOM file"),
        ("not_dicom", "excluded: not a DICOM file"),
        (
            "cut_header",
            "excluded: DICOM file without SeriesInstanceUID (file of 200 bytes that ends before its pixel "
            "data: a truncated copy?)",
        ),
    ],
)
def test_unusable_file_is_listed_with_its_reason(corpus, case, reason):
    _, _, cases, qc, _ = corpus
    assert qc_reason(qc, file_key(cases[case])) == reason


def test_every_file_is_accounted_for_and_no_traceback(corpus):
    root, _, _, qc, logs = corpus
    n_files = sum(1 for path in (root / "data" / "dicom").rglob("*") if path.is_file())
    assert qc["n_files"].astype(int).sum() == n_files  # never a silent drop
    assert set(qc["status"]) == {"kept", "excluded"}
    assert (qc.loc[qc["status"] == "excluded", "reason"] != "").all()
    for name, text in logs.items():
        assert "Traceback" not in text, name


def test_good_and_compressed_series_are_kept(corpus):
    """Two studies mixed in one folder are two scans; RLE, JPEG 2000 and JPEG Lossless decode."""
    _, workdir, cases, qc, _ = corpus
    kept = qc[qc["status"] == "kept"].set_index("series_key")["scan_id"]
    expected = {
        "twenty_slices": "P01_scan1", "twentyseven_slices": "P02_scan1", "mixed_a": "P03_scan1",
        "mixed_b": "P03_scan2", "rle": "P04_scan1", "jpeg2000": "P05_scan1", "jpeg_lossless": "P06_scan1",
        "no_rescale": "P07_scan1", "with_scout": "P08_scan1",
    }  # fmt: skip
    assert {case: kept.get(series_key(cases[case])) for case in expected} == expected
    assert len(kept) == len(expected)
    notes = qc.set_index("series_key").loc[series_key(cases["no_rescale"]), "notes"]
    assert notes == "RescaleSlope/RescaleIntercept missing: assumed 1/0"  # documented default


def test_compressed_series_are_decoded_to_the_same_hu(corpus):
    import nibabel as nib

    from htct.testing.dicom import head_phantom

    _, workdir, _, _, _ = corpus
    # P07's series has no rescale tags and stores HU directly: the documented default slope 1 / intercept 0.
    for scan_id, seed in (("P04_scan1", 5), ("P05_scan1", 6), ("P06_scan1", 7), ("P07_scan1", 8)):
        hu = nib.load(workdir / "results/nifti" / f"{scan_id}.nii.gz").get_fdata()
        expected = head_phantom(24, 64, 64, seed=seed)
        assert np.array_equal(hu, expected.transpose(2, 1, 0)[::-1, ::-1, :]), scan_id


def test_short_series_are_padded_to_28_slices(corpus):
    _, workdir, _, _, _ = corpus
    index = pd.read_csv(workdir / "results/arrays/index.tsv", sep="\t").set_index("scan_id")
    assert (index.loc["P01_scan1", "n_pad_before"], index.loc["P01_scan1", "n_pad_after"]) == (4, 4)
    assert (index.loc["P02_scan1", "n_pad_before"], index.loc["P02_scan1", "n_pad_after"]) == (0, 1)
    assert (index.loc["P03_scan1", "n_pad_before"], index.loc["P03_scan1", "n_pad_after"]) == (2, 2)
    assert np.load(workdir / "results/arrays/volumes.npy", mmap_mode="r").shape[2] == 28


def test_patients_without_a_usable_scan_are_listed(corpus):
    _, workdir, _, _, logs = corpus
    patients = pd.read_csv(workdir / "results/qc/patients.tsv", sep="\t", keep_default_na=False)
    assert list(patients["patient_id"]) == list(PATIENTS)
    by_id = patients.set_index("patient_id")
    assert (by_id.loc["P03", "n_scans_found"], by_id.loc["P03", "n_scans_kept"]) == (2, 2)
    assert (by_id.loc["P08", "n_scans_found"], by_id.loc["P08", "status"]) == (1, "included")
    assert by_id.loc["F09"].to_dict() == {
        "n_scans_found": 8,
        "n_scans_kept": 0,
        "status": "excluded",
        "reason": "none of its 8 scan(s) passed QC (reasons in results/qc/series.tsv)",
    }
    assert by_id.loc["N10", "status"] == "excluded"
    assert by_id.loc["N10", "reason"].startswith(
        "no DICOM series whose PatientID matches its dicom_patient_id"
    )
    assert set(by_id.index[by_id["status"] == "included"]) == {f"P0{k}" for k in range(1, 9)}
    split = pd.read_csv(workdir / "results/split/split.tsv", sep="\t")
    assert set(split["patient_id"]) == {f"P0{k}" for k in range(1, 9)}
    assert "WARNING 2 of 10 patient(s) of the clinical sheet are excluded" in logs["patient_qc.log"]
    assert "N10: no DICOM series" in logs["patient_qc.log"]


def test_duplicate_patient_in_a_real_run_ends_with_one_line(corpus, tmp_path):
    """The full user experience: exit status != 0, one HTCT-ERROR line naming file and patient,
    before any job runs (the sheets of a real cohort are checked when the workflow is parsed)."""
    root, _, _, _, _ = corpus
    data = tmp_path / "data"
    data.mkdir()
    (data / "dicom").symlink_to(root / "data" / "dicom")
    clinical = clinical_csv(data / "clinical.csv", extra_rows="P03,MRN-33,1,70,M,none\n")
    workdir = copy_workflow(tmp_path / "workflow")
    result = snakemake(workdir, write_config(workdir / "dup.yaml", data), "results/qc/scans.tsv")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    errors = [line.strip() for line in output.splitlines() if "HTCT-ERROR:" in line]
    assert errors == [
        f"HTCT-ERROR: clinical sheet {clinical}: patient_id P03 appears more than once; give each patient "
        "exactly one row"
    ]
    assert "Traceback" not in output
    assert not (workdir / "logs").exists()  # no job ran


def test_bad_input_met_by_a_job_ends_with_one_line_and_its_log(corpus, tmp_path):
    """A job that meets bad input (here: a DICOM folder without any DICOM file) fails with one
    HTCT-ERROR line in its log, which the workflow repeats at the end with the log's path."""
    root, _, _, _, _ = corpus
    data = tmp_path / "data"
    (data / "dicom").mkdir(parents=True)
    (data / "dicom" / "notes.txt").write_text("not an image\n")
    clinical_csv(data / "clinical.csv")
    workdir = copy_workflow(tmp_path / "workflow")
    result = snakemake(workdir, write_config(workdir / "empty.yaml", data), "results/qc/scans.tsv")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("HTCT-ERROR:")]
    assert len(errors) == 1 and errors[0].endswith("(log: logs/convert_dicom/shard0.log)"), errors
    assert str(data / "dicom") in errors[0]
    log = (workdir / "logs/convert_dicom/shard0.log").read_text()
    assert "Traceback" not in log and log.count("HTCT-ERROR:") == 1


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("preprocess", {"n_slices": 0}, "0 is less than the minimum of 1"),
        ("split", {"test_fraction": 0.9}, "0.9 is greater than or equal to the maximum of 0.5"),
        ("train", {"device": "tpu"}, "'tpu' is not one of ['auto', 'cpu', 'cuda']"),
    ],
)
def test_config_value_out_of_range_names_the_key(corpus, tmp_path, section, values, message):
    root, workdir, _, _, _ = corpus
    config = write_config(tmp_path / "bad.yaml", root / "data", **{section: values})
    result = snakemake(workdir, config, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr  # Snakemake prints parse-time errors on stdout
    assert "Error validating config file" in output and message in output
    assert f"On instance['{section}']['{next(iter(values))}']" in output  # names the key
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda text: text.replace("P05,MRN-05,0,", "P05,MRN-05,maybe,"),
            "(patient_id P05): column label: 'maybe' is not of type 'integer'",
            id="unknown_label",
        ),
        pytest.param(
            lambda text: text.replace(",medication", "").replace(",none", ""),
            "lacks the column(s) medication",
            id="missing_column",
        ),
    ],
)
def test_clinical_sheet_schema_errors_stop_a_real_cohort_before_any_job(corpus, tmp_path, edit, message):
    root, workdir, _, _, _ = corpus
    data = tmp_path / "data"
    data.mkdir()
    (data / "dicom").symlink_to(root / "data" / "dicom")
    clinical = data / "clinical.csv"
    clinical.write_text(edit((root / "data" / "clinical.csv").read_text()))
    result = snakemake(workdir, write_config(tmp_path / "c.yaml", data), "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "HTCT-ERROR: clinical sheet" in output and message in output and "Traceback" not in output


def test_sheet_errors_are_one_line_naming_file_and_patient(tmp_path):
    """Library level, the message the HTCT-ERROR line carries (test_sheets.py has the rest)."""
    clinical = clinical_csv(tmp_path / "clinical.csv")
    text = clinical.read_text()
    for edit, message in (
        (
            text.replace("P05,MRN-05,0,", "P05,MRN-05,2,"),
            r"line 6 \(patient_id P05\): column label: 2 is not one of",
        ),
        (text.replace("patient_id,dicom", "pid,dicom"), r"lacks the column\(s\) patient_id"),
        (text.replace("N10,MRN-10", "N10,MRN-01"), r"dicom_patient_id MRN-01 appears more than once"),
    ):
        clinical.write_text(edit)
        with pytest.raises(HTCTInputError, match=message) as error:
            load_clinical(clinical)
        assert "\n" not in str(error.value) and str(clinical) in str(error.value)
    readers = tmp_path / "readers.csv"
    readers.write_text("scan_id,reader,p_ht\nP01_scan1,R1,0.2\nP02_scan1,R1,0.8\nP01_scan1,R2,0.4\n")
    with pytest.raises(HTCTInputError) as error:
        load_readers(readers, test_scans=["P01_scan1", "P02_scan1"])
    assert str(error.value) == (
        f"readers sheet {readers}: reader 'R2' has no rating for test scan P02_scan1 (1 test scan(s) missing); "
        "every reader must rate every test scan"
    )


def test_uncaught_input_error_is_one_line_without_traceback(tmp_path):
    """What every workflow script does: report_input_errors() turns HTCTInputError into one stderr line."""
    clinical = clinical_csv(tmp_path / "clinical.csv", extra_rows="P01,MRN-77,0,50,M,none\n")
    code = (
        "from htct.errors import report_input_errors; report_input_errors()\n"
        f"from htct.sheets import load_clinical; load_clinical({str(clinical)!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"HTCT-ERROR: clinical sheet {clinical}: patient_id P01 appears more than once; "
        "give each patient exactly one row"
    ]
