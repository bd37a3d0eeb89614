"""A toy cohort of training arrays in the preprocess/split stages' formats, for tests and benchmarks.

HT scans carry a bright blob (hyperdensity) in one hemisphere, so a model can learn the label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_toy_arrays(
    out_dir: str | Path,
    n_patients: int = 24,
    n_slices: int = 28,
    size: int = 32,
    n_channels: int = 1,
    seed: int = 0,
    fractions: tuple[float, float] = (0.2, 0.2),
) -> dict[str, Path]:
    """Write volumes.npy, index.tsv and split.tsv (one scan per patient, alternating labels).

    Args:
        out_dir: folder to write to.
        n_patients: number of patients (= scans).
        n_slices: slices per scan.
        size: in-plane size.
        n_channels: HU windows.
        seed: random seed.
        fractions: shares of patients in the validation and test parts.

    Returns:
        Paths with keys volumes, index, split.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = np.arange(n_patients) % 2
    volumes = rng.normal(0.4, 0.08, size=(n_patients, n_channels, n_slices, size, size)).astype(np.float32)
    zz, yy, xx = np.meshgrid(np.arange(n_slices), np.arange(size), np.arange(size), indexing="ij")
    for i in np.flatnonzero(labels):
        centre = (rng.integers(n_slices // 4, 3 * n_slices // 4), rng.integers(size // 4, 3 * size // 4))
        x_centre = rng.choice([size // 4, 3 * size // 4])
        blob = (
            ((zz - centre[0]) / 3) ** 2
            + ((yy - centre[1]) / (size / 8)) ** 2
            + ((xx - x_centre) / (size / 8)) ** 2
        )
        volumes[i] += 0.4 * (blob < 1)
    volumes = np.clip(volumes, 0, 1).astype(np.float16)
    np.save(out_dir / "volumes.npy", volumes)
    patient_ids = [f"P{i:03d}" for i in range(n_patients)]
    index = pd.DataFrame(
        {
            "row": np.arange(n_patients),
            "scan_id": [f"{p}_scan1" for p in patient_ids],
            "patient_id": patient_ids,
            "label": labels,
        }
    )
    index.to_csv(out_dir / "index.tsv", sep="\t", index=False)
    n_val, n_test = (max(2, round(f * n_patients)) for f in fractions)
    n_val += n_val % 2
    n_test += n_test % 2
    part = np.array(["train"] * n_patients, dtype=object)
    part[:n_val] = "val"  # alternating labels: every part holds both classes
    part[n_val : n_val + n_test] = "test"
    split = pd.DataFrame({"patient_id": patient_ids, "label": labels, "part": part, "fold": -1})
    split.to_csv(out_dir / "split.tsv", sep="\t", index=False)
    return {
        "volumes": out_dir / "volumes.npy",
        "index": out_dir / "index.tsv",
        "split": out_dir / "split.tsv",
    }


def write_toy_ct_series(
    out_dir: str | Path,
    n_slices: int = 28,
    matrix: int = 64,
    pixel_spacing_mm: float | None = None,
    seed: int = 0,
) -> Path:
    """Write one axial CT series of a crude head (skull ring, brain, a hyperdense spot) as DICOM files.

    Enough DICOM for the conversion rules (CT Image Storage, geometry, rescale); for tests and
    benchmarks of `htct predict`, not a phantom for evaluation.

    Args:
        out_dir: folder to write the files to (created).
        n_slices: number of 5 mm slices.
        matrix: rows = columns.
        pixel_spacing_mm: in-plane spacing; default: a 230 mm field of view.
        seed: random seed of the noise.

    Returns:
        `out_dir`.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spacing = pixel_spacing_mm or 230.0 / matrix
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[0:matrix, 0:matrix] - (matrix - 1) / 2) * spacing
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    for k in range(n_slices):
        z = (k - (n_slices - 1) / 2) * 5.0
        scale = np.sqrt(max(1e-3, 1 - (z / 75.0) ** 2))
        r = np.sqrt((xx / (70 * scale)) ** 2 + (yy / (90 * scale)) ** 2)
        hu = np.full((matrix, matrix), -1000.0)
        hu[r < 1.0] = 1000.0  # skull
        hu[r < 0.92] = 35.0  # brain
        hu[(r < 0.92) & ((xx - 25) ** 2 + (yy - 10) ** 2 < 15**2) & (abs(z) < 20)] = 70.0  # hyperdensity
        hu += rng.normal(0, 4, hu.shape)
        stored = np.clip(np.round(hu + 1024), 0, 4095).astype(np.uint16)

        ds = FileMetaDataset()
        ds.MediaStorageSOPClassUID = CTImageStorage
        sop_uid = generate_uid()
        ds.MediaStorageSOPInstanceUID = sop_uid
        ds.TransferSyntaxUID = ExplicitVRLittleEndian
        image = Dataset()
        image.file_meta = ds
        image.SOPClassUID = CTImageStorage
        image.SOPInstanceUID = sop_uid
        image.Modality = "CT"
        image.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        image.PatientID = "TOY001"
        image.StudyInstanceUID = study_uid
        image.SeriesInstanceUID = series_uid
        image.FrameOfReferenceUID = frame_uid
        image.StudyDate, image.StudyTime = "20260101", "120000"
        image.SeriesNumber, image.InstanceNumber = 1, k + 1
        image.ImagePositionPatient = [
            float(-(matrix - 1) / 2 * spacing),
            float(-(matrix - 1) / 2 * spacing),
            z,
        ]
        image.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        image.PixelSpacing = [spacing, spacing]
        image.SliceThickness = 5.0
        image.Rows = image.Columns = matrix
        image.SamplesPerPixel = 1
        image.PhotometricInterpretation = "MONOCHROME2"
        image.BitsAllocated, image.BitsStored, image.HighBit = 16, 12, 11
        image.PixelRepresentation = 0
        image.RescaleIntercept, image.RescaleSlope = -1024.0, 1.0
        image.PixelData = stored.tobytes()
        image.save_as(out_dir / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
    return out_dir
