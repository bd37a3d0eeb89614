"""Write synthetic CT series as DICOM files (CT Image Storage, explicit VR little endian).

Headers carry what a hospital export carries (identity, dates, geometry, acquisition, display), so
the converter meets real-looking files; the values come from the cohort tables and the series
geometry, and every UID is derived from the seed, so a seed gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from htct import __version__
from htct.synth.geometry import SeriesGeometry

RESCALE_INTERCEPT = -1024.0  # stored value = HU + 1024


def synthetic_uid(seed: int, *parts: object) -> str:
    """A valid UID determined by the seed and the given parts (pydicom's root, hashed entropy)."""
    return generate_uid(entropy_srcs=["htct-synth", str(seed), *[str(p) for p in parts]])


def _number(value: float) -> str:
    """A decimal string short enough for a DS element (at most 16 characters)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class StudyHeader:
    """Values shared by every file of a study (patient identity, study identity and timing)."""

    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    age_years: int
    institution: str
    referring_physician: str
    station_name: str
    accession_number: str
    study_uid: str
    frame_of_reference_uid: str
    study_date: str
    study_time: str
    study_id: str


def _base_dataset(study: StudyHeader, sop_uid: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"HTCT_SYNTH_{__version__}"[:16]
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study.study_date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = study.study_time
    ds.AccessionNumber = study.accession_number
    ds.Modality = "CT"
    ds.Manufacturer = "HTCT Synthetic"
    ds.InstitutionName = study.institution
    ds.ReferringPhysicianName = study.referring_physician
    ds.StationName = study.station_name
    ds.StudyDescription = "CT HEAD WO CONTRAST"
    ds.ManufacturerModelName = "PhantomCT 64"
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.PatientAge = f"{study.age_years:03d}Y"
    ds.BodyPartExamined = "HEAD"
    ds.KVP = "120"
    ds.SoftwareVersions = f"htct-synth {__version__}"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study.study_uid
    ds.StudyID = study.study_id
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def _file_name(directory: Path, instance: int, with_extension: bool) -> Path:
    return directory / (f"IM{instance:04d}.dcm" if with_extension else f"IM{instance:04d}")


def write_axial_series(
    directory: Path,
    hu_volume: np.ndarray,
    geometry: SeriesGeometry,
    study: StudyHeader,
    series_uid: str,
    series_number: int,
    sop_uids: list[str],
    superior_first: bool,
    with_extension: bool,
) -> list[Path]:
    """Write one axial series, one file per slice.

    Args:
        directory: folder of the series (created).
        hu_volume: int16 HU [n_slices, rows, columns], k order (ascending along the normal).
        geometry: the series geometry (positions, orientation, spacing).
        study: study-level header values.
        series_uid: SeriesInstanceUID.
        series_number: SeriesNumber.
        sop_uids: SOPInstanceUID per slice in k order.
        superior_first: InstanceNumber 1 is the top slice (instances run down the head).
        with_extension: name files ``IMxxxx.dcm`` instead of ``IMxxxx``.

    Returns:
        The paths written, in InstanceNumber order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    positions = geometry.slice_positions_lps()
    order = np.arange(geometry.n_slices)[::-1] if superior_first else np.arange(geometry.n_slices)
    thickness = geometry.slice_spacing_mm
    stored = (hu_volume.astype(np.int32) - int(RESCALE_INTERCEPT)).astype("<i2")
    # One dataset per series, its per-slice elements updated before each write: building a
    # pydicom Dataset element by element costs more than writing it, so the series-level elements
    # are set once (the files are the same as with a fresh dataset per slice).
    ds = _base_dataset(study, sop_uids[0])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SeriesDescription = f"HEAD {thickness:.1f} H30s"
    ds.SliceThickness = _number(thickness)
    ds.SpacingBetweenSlices = _number(thickness)
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = _number(geometry.columns * geometry.column_spacing_mm)
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "1000"
    ds.XRayTubeCurrent = "300"
    ds.ConvolutionKernel = "H30s"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [_number(v) for v in (*geometry.row_cosine, *geometry.column_cosine)]
    ds.Rows = geometry.rows
    ds.Columns = geometry.columns
    ds.PixelSpacing = [_number(geometry.row_spacing_mm), _number(geometry.column_spacing_mm)]
    ds.WindowCenter = "40"
    ds.WindowWidth = "80"
    ds.RescaleIntercept = _number(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    paths = []
    for instance, k in enumerate(order, start=1):
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uids[k]
        ds.SOPInstanceUID = sop_uids[k]
        ds.InstanceNumber = instance
        ds.ImagePositionPatient = [_number(v) for v in positions[k]]
        ds.SliceLocation = _number(float(positions[k] @ geometry.normal))
        ds.PixelData = stored[k].tobytes()
        path = _file_name(directory, instance, with_extension)
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def write_lateral_scout(
    directory: Path,
    image: np.ndarray,
    top_left_lps: tuple[float, float, float],
    spacing_mm: float,
    study: StudyHeader,
    series_uid: str,
    sop_uid: str,
    with_extension: bool,
) -> Path:
    """Write a lateral localizer (ImageType ORIGINAL\\PRIMARY\\LOCALIZER, sagittal orientation).

    Args:
        directory: folder of the series (created).
        image: int16 projection image [rows (inferior), columns (posterior)].
        top_left_lps: ImagePositionPatient of the first pixel.
        spacing_mm: pixel spacing.
        study: study-level header values.
        series_uid: SeriesInstanceUID.
        sop_uid: SOPInstanceUID.
        with_extension: name the file ``IM0001.dcm``.

    Returns:
        The path written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ds = _base_dataset(study, sop_uid)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.SeriesDescription = "Topogram 0.6 T20s"
    ds.SliceThickness = "0.6"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [_number(v) for v in top_left_lps]
    ds.ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
    ds.Rows, ds.Columns = image.shape
    ds.PixelSpacing = [_number(spacing_mm), _number(spacing_mm)]
    ds.WindowCenter = "1500"
    ds.WindowWidth = "3000"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.PixelData = image.astype("<i2").tobytes()
    path = _file_name(directory, 1, with_extension)
    dcmwrite(path, ds, enforce_file_format=True)
    return path
