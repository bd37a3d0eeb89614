"""Small CT series written with pydicom, for the tests and benchmarks: the project's one test writer.

Not the cohort generator (htct.synth): head-shaped phantoms with just the header fields a converter
reads, plus knobs to produce the faults the QC rules must catch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import CTImageStorage, ExplicitVRBigEndian, ExplicitVRLittleEndian, RLELossless, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def head_phantom(n_slices: int, rows: int, columns: int, seed: int = 0) -> np.ndarray:
    """HU volume [slice, row, column]: air, a 7 mm skull ellipse, brain at ~35 HU with scanner-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : rows * 1j, -1 : 1 : columns * 1j]
    volume = np.full((n_slices, rows, columns), -1000.0)
    for k in range(n_slices):
        scale = 0.55 + 0.35 * np.sin(np.pi * (k + 1) / (n_slices + 1))  # head narrows towards both ends
        radius = (x / (0.75 * scale)) ** 2 + (y / (0.9 * scale)) ** 2
        volume[k][radius < 1.0] = 1000.0
        volume[k][radius < 0.85] = 35.0
    volume += rng.normal(0.0, 4.0, volume.shape)
    return np.round(volume)


def write_ct_series(
    folder: str | Path,
    n_slices: int = 24,
    rows: int = 32,
    columns: int = 32,
    *,
    hu: np.ndarray | None = None,
    positions_z: Sequence[float] | None = None,
    slice_thickness: float | Sequence[float] = 5.0,
    pixel_spacing: float = 0.5,
    orientation: Sequence[float] = AXIAL,
    origin_xy: tuple[float, float] = (-8.0, -8.0),
    modality: str = "CT",
    sop_class_uid: str = CTImageStorage,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    convolution_kernel: str | Sequence[str] = "",
    series_description: str = "",
    rescale: tuple[float, float] | None = (1.0, -1024.0),
    patient_id: str = "PAT-001",
    patient_name: str = "Doe^Jane",
    study_uid: str | None = None,
    series_uid: str | None = None,
    study_date: str = "20240101",
    study_time: str = "120000",
    gantry_tilt: float = 0.0,
    manufacturer: str = "",
    spatial_instance_numbers: bool = False,
    rle: bool = False,
    transfer_syntax: str = ExplicitVRLittleEndian,
    raw_dataset: bool = False,
    file_names: Sequence[str] | None = None,
    seed: int = 0,
) -> list[Path]:
    """Write one axial series (one file per slice, shuffled InstanceNumbers don't matter to a converter).

    Args:
        folder: destination (created).
        n_slices, rows, columns: volume size (ignored where ``hu`` or ``positions_z`` give it).
        hu: HU volume [slice, row, column]; a noisy head phantom when None.
        positions_z: z of each slice's ImagePositionPatient (default: 0, thickness, 2*thickness, ...).
        slice_thickness: SliceThickness, one for all slices or one per slice.
        rescale: (RescaleSlope, RescaleIntercept) or None to leave both tags out (stored = HU then).
        convolution_kernel, series_description: ConvolutionKernel and SeriesDescription (left out when
            empty); a kernel may have several values (["Hr40f", "3"]).
        patient_name: written as PatientName (and into other identifying tags) to test PHI scrubbing.
        manufacturer: Manufacturer (left out when ""); dcm2niix tunes its tilt correction to it.
        spatial_instance_numbers: InstanceNumber 1, 2, ... along the slices (default: reversed, since
            converters must sort by position; dcm2niix places a tilt-corrected volume wrongly then).
        rle: encode the pixels with pydicom's RLE Lossless encoder.
        transfer_syntax: an uncompressed transfer syntax to write: Explicit VR Little Endian, Deflated
            Explicit VR Little Endian or Explicit VR Big Endian.
        raw_dataset: write implicit-VR datasets without preamble and file meta (old exports).
        file_names: names of the files (default IM0001, ...; no extension, as many PACS exports).

    Returns:
        The files written, in slice order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if hu is not None:
        n_slices = hu.shape[0]
    if positions_z is None:
        positions_z = [k * float(np.ravel(slice_thickness)[0]) for k in range(n_slices)]
    n_slices = len(positions_z)
    thickness = np.broadcast_to(np.asarray(slice_thickness, dtype=float), (n_slices,))
    if hu is None:
        hu = head_phantom(n_slices, rows, columns, seed)
    rows, columns = hu.shape[1:]
    slope, intercept = rescale if rescale is not None else (1.0, 0.0)
    stored = np.round((hu - intercept) / slope)
    unsigned = stored.min() >= 0
    stored = stored.astype(np.uint16 if unsigned else np.int16)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    paths = []
    for k, z in enumerate(positions_z):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class_uid
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = transfer_syntax
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class_uid
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = modality
        ds.ImageType = list(image_type)
        if convolution_kernel:
            ds.ConvolutionKernel = convolution_kernel
        if series_description:
            ds.SeriesDescription = series_description
        ds.PatientID = patient_id
        ds.PatientName = patient_name
        ds.PatientBirthDate = "19500101"
        ds.AccessionNumber = f"ACC-{patient_name[:4]}"
        ds.InstitutionName = f"Hospital of {patient_name}"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyDate, ds.StudyTime = study_date, study_time
        ds.SeriesNumber = 2
        ds.InstanceNumber = k + 1 if spatial_instance_numbers else n_slices - k
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.ImagePositionPatient = [f"{origin_xy[0]:.4f}", f"{origin_xy[1]:.4f}", f"{z:.4f}"]
        ds.PixelSpacing = [pixel_spacing, pixel_spacing]
        ds.SliceThickness = float(thickness[k])
        ds.GantryDetectorTilt = gantry_tilt
        if manufacturer:
            ds.Manufacturer = manufacturer
        if rescale is not None:
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = rows, columns
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0 if unsigned else 1
        ds.PixelData = stored[k].tobytes()
        if rle:
            ds.compress(RLELossless, encoding_plugin="pydicom")
        path = folder / (file_names[k] if file_names else f"IM{k + 1:04d}")
        if transfer_syntax == ExplicitVRBigEndian:  # pydicom writes values as given: swap the pixels
            ds.PixelData = stored[k].astype(stored.dtype.newbyteorder(">")).tobytes()
            ds.preamble = b"\x00" * 128
            dcmwrite(path, ds, implicit_vr=False, little_endian=False, force_encoding=True)
        elif raw_dataset:
            del ds.file_meta
            ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
        else:
            ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def toy_head_hu(
    n_slices: int = 28, matrix: int = 64, spacing_mm: float | None = None, seed: int = 0
) -> np.ndarray:
    """HU volume [slice, row, column] of a crude 5 mm head in mm: skull ring, brain, a hyperdense spot.

    Enough anatomy for `htct predict` to find a brain slab and crop a head; not a phantom for evaluation.
    """
    spacing = spacing_mm or 230.0 / matrix
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[0:matrix, 0:matrix] - (matrix - 1) / 2) * spacing
    volume = np.full((n_slices, matrix, matrix), -1000.0)
    for k in range(n_slices):
        z = (k - (n_slices - 1) / 2) * 5.0
        scale = np.sqrt(max(1e-3, 1 - (z / 75.0) ** 2))
        r = np.sqrt((xx / (70 * scale)) ** 2 + (yy / (90 * scale)) ** 2)
        volume[k][r < 1.0] = 1000.0  # skull
        volume[k][r < 0.92] = 35.0  # brain
        volume[k][(r < 0.92) & ((xx - 25) ** 2 + (yy - 10) ** 2 < 15**2) & (abs(z) < 20)] = 70.0
    return np.round(volume + rng.normal(0, 4, volume.shape))


def write_toy_ct_series(
    out_dir: str | Path,
    n_slices: int = 28,
    matrix: int = 64,
    pixel_spacing_mm: float | None = None,
    seed: int = 0,
) -> Path:
    """One 5 mm axial series of :func:`toy_head_hu` (for `htct predict`'s tests and benchmark).

    Returns:
        `out_dir`, holding IM0001.dcm, ...
    """
    spacing = pixel_spacing_mm or 230.0 / matrix
    half = (matrix - 1) / 2 * spacing
    write_ct_series(
        out_dir,
        hu=toy_head_hu(n_slices, matrix, spacing, seed),
        positions_z=[(k - (n_slices - 1) / 2) * 5.0 for k in range(n_slices)],
        pixel_spacing=spacing,
        origin_xy=(-half, -half),
        patient_id="TOY001",
        patient_name="Toy^Patient",
        file_names=[f"IM{k + 1:04d}.dcm" for k in range(n_slices)],
        spatial_instance_numbers=True,
        seed=seed,
    )
    return Path(out_dir)
