"""A small hospital-like cohort built from the real scanner series of ../shared/data/dcm_qa_ct.

What a PACS export of a stroke cohort holds, made from the few public head-CT series we have: each
patient gets a copy of the Philips 5 mm series with its own StudyInstanceUID, SeriesInstanceUIDs,
SOPInstanceUIDs and PatientID (and a little extra noise on the pixels, so that the copies are not
identical scans), some copies keep the exam's scout, its secondary-capture exam summaries and the
Philips DIRFILEs; one patient has a second, later study; one patient is the tilted GE series; one
exported patient is not in the clinical sheet (a stray) and one patient of the sheet has no DICOM.
One copy lost its top slice to an interrupted transfer (the file ends before its SeriesInstanceUID)
and one holds a byte-identical second copy of a slice. There is no readers sheet: most hospital
cohorts have no reader study. `build_small_cohort` writes the smallest cohort that can be split.

Used by tests/test_own_cohort.py; `python tests/own_cohort.py DEST` writes one for a manual run.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pydicom
import yaml
from pydicom.uid import generate_uid

DCM_QA_CT = Path(__file__).resolve().parents[2] / "shared" / "data" / "dcm_qa_ct"
PHILIPS = "Philips_S21570"
PHILIPS_AXIAL, PHILIPS_SCOUT, PHILIPS_SUMMARY = "S2010", "S1000", "S4010"
GE = "GE"
CLINICAL_HEADER = "patient_id,dicom_patient_id,label,age,sex,medication\n"
MEDICATIONS = ("antiplatelet", "anticoagulant", "thrombolytic", "none", "not_available")

N_PHILIPS_PATIENTS = 12
"""Patients H01..H12 with the Philips series (half with HT)."""
WITH_SCOUT_AND_SUMMARY = {"H01", "H02", "H03"}
SECOND_STUDY = "H04"
TILTED = "H13"
"""The patient whose only scan is the GE series: 18.5 degree gantry tilt, uneven slice gaps."""
STRAY = "MRN-STRAY"
"""A PatientID exported from PACS that matches no row of the clinical sheet."""
WITHOUT_DICOM = "H14"
TRUNCATED = "H05"
"""Its series' top slice is cut short before its SeriesInstanceUID: kept with 27 of 28 slices."""
DUPLICATED = "H06"
"""Its series holds one slice twice (a byte-identical copy): the copy is dropped, the series kept."""
NOISE_HU = 8.0


def _copy_series(
    source: Path,
    target: Path,
    patient_id: str,
    study_uid: str,
    rng: np.random.Generator | None,
    study_date: str | None = None,
) -> None:
    """Copy one series with new Series/SOP UIDs, the given study and patient; noise on CT pixels."""
    target.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    for path in sorted(source.iterdir()):
        if path.name == "DIRFILE":  # a Philips directory file, not an image: copied as it is
            shutil.copyfile(path, target / path.name)
            continue
        ds = pydicom.dcmread(path)
        ds.PatientID = patient_id
        ds.PatientName = f"Test^{patient_id}"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if study_date is not None:
            ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
        if rng is not None and "PixelData" in ds and ds.get("Modality") == "CT":
            stored = ds.pixel_array
            bits = int(ds.BitsStored)
            low, high = (
                (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                if ds.PixelRepresentation
                else (0, (1 << bits) - 1)
            )
            noisy = stored + rng.normal(0.0, NOISE_HU / float(ds.get("RescaleSlope", 1)), stored.shape)
            ds.PixelData = np.clip(np.round(noisy), low, high).astype(stored.dtype).tobytes()
        ds.save_as(target / path.name, enforce_file_format=True)


def _edge_slice(folder: Path) -> Path:
    """The file of the series in `folder` at the top of the head (largest z)."""
    images = [path for path in sorted(folder.iterdir()) if path.name != "DIRFILE"]
    return max(
        images, key=lambda path: float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])
    )


def cut_before_series_uid(path: Path) -> None:
    """Truncate a DICOM file just before its SeriesInstanceUID (0020,000E), as an interrupted copy."""
    data = path.read_bytes()
    end = data.find(b"\x20\x00\x0e\x00", 132)  # explicit VR little endian: group, element
    assert end > 0, path
    path.write_bytes(data[:end])


def build_own_cohort(root: str | Path, dcm_qa_ct: str | Path = DCM_QA_CT, seed: int = 14) -> dict[str, Path]:
    """Write the cohort under `root`: dicom/ (a PACS-like tree) and clinical.csv; no readers sheet.

    Args:
        root: destination folder (created).
        dcm_qa_ct: the dcm_qa_ct reference data (Philips_S21570/ and GE/).
        seed: seed of the pixel noise and of the clinical values.

    Returns:
        {"dicom": ..., "clinical": ...}.
    """
    root, dcm_qa_ct = Path(root), Path(dcm_qa_ct)
    dicom = root / "dicom"
    rng = np.random.default_rng(seed)
    philips = dcm_qa_ct / PHILIPS
    rows = []
    for k in range(1, N_PHILIPS_PATIENTS + 1):
        patient = f"H{k:02d}"
        mrn = f"MRN-{k:04d}"
        study = generate_uid()
        _copy_series(philips / PHILIPS_AXIAL, dicom / mrn / "study1" / "axial", mrn, study, rng)
        if patient in WITH_SCOUT_AND_SUMMARY:
            _copy_series(philips / PHILIPS_SCOUT, dicom / mrn / "study1" / "scout", mrn, study, None)
            _copy_series(philips / PHILIPS_SUMMARY, dicom / mrn / "study1" / "summary", mrn, study, None)
        axial = dicom / mrn / "study1" / "axial"
        if patient == TRUNCATED:
            cut_before_series_uid(_edge_slice(axial))
        if patient == DUPLICATED:  # a slice sent twice by the PACS: the same file under a second name
            first = sorted(path for path in axial.iterdir() if path.name != "DIRFILE")[0]
            shutil.copyfile(first, axial / f"{first.name}_copy")
        if patient == SECOND_STUDY:  # a follow-up CT a day later: the patient's scan2
            _copy_series(
                philips / PHILIPS_AXIAL, dicom / mrn / "study2", mrn, generate_uid(), rng, "20150207"
            )
        rows.append((patient, mrn, k % 2))
    _copy_series(dcm_qa_ct / GE, dicom / "MRN-GE" / "tilted", "MRN-GE", generate_uid(), None)
    rows.append((TILTED, "MRN-GE", 1))
    _copy_series(philips / PHILIPS_AXIAL, dicom / STRAY, STRAY, generate_uid(), rng)
    rows.append((WITHOUT_DICOM, "MRN-NONE", 0))
    clinical = root / "clinical.csv"
    clinical.write_text(
        CLINICAL_HEADER
        + "".join(
            f"{patient},{mrn},{label},{int(rng.integers(45, 90))},{'MF'[int(rng.integers(2))]},"
            f"{MEDICATIONS[int(rng.integers(len(MEDICATIONS)))]}\n"
            for patient, mrn, label in rows
        )
    )
    return {"dicom": dicom, "clinical": clinical}


def build_small_cohort(
    root: str | Path, labels: tuple[int, ...] = (0, 1, 0, 1), dcm_qa_ct: str | Path = DCM_QA_CT, seed: int = 4
) -> dict[str, Path]:
    """The smallest cohort: one Philips copy per patient S01, S02, ... with the given HT labels."""
    root, philips = Path(root), Path(dcm_qa_ct) / PHILIPS
    rng = np.random.default_rng(seed)
    for k in range(1, len(labels) + 1):
        _copy_series(philips / PHILIPS_AXIAL, root / "dicom" / f"MRN-S{k}", f"MRN-S{k}", generate_uid(), rng)
    clinical = root / "clinical.csv"
    clinical.write_text(
        CLINICAL_HEADER
        + "".join(f"S{k:02d},MRN-S{k},{label},70,F,none\n" for k, label in enumerate(labels, 1))
    )
    return {"dicom": root / "dicom", "clinical": clinical}


def own_cohort_config(path: str | Path, cohort: dict[str, Path], **sections: dict) -> Path:
    """A site's config file for the cohort (as config/own_cohort.example.yaml), at test sizes."""
    config = {
        "data": {"synthetic": False, "dicom_dir": str(cohort["dicom"]), "clinical": str(cohort["clinical"])},
        "preprocess": {"size": 32},
        "split": {"seed": 3, "test_fraction": 0.34, "val_fraction": 0.3},
        "train": {"epochs": 2, "batch_size": 4, "num_workers": 0},
        "evaluate": {"n_bootstrap": 200},
    }
    for section, values in sections.items():
        config[section] = config.get(section, {}) | values
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False))
    return Path(path)


if __name__ == "__main__":
    destination = Path(sys.argv[1])
    written = build_own_cohort(destination)
    print(own_cohort_config(destination / "own_cohort.yaml", written))
