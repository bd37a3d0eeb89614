"""Slice geometry of a series and the rules that keep an axial CT volume or exclude it with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from htct.dicom.discover import CT_IMAGE_STORAGE, SliceHeader
from htct.dicom.resample import GridCorrection, plan_correction

# Codecs pydicom needs per compressed transfer syntax (named in the QC reason when none is installed).
CODEC_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.51": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.81": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.90": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg pylibjpeg-rle",
}
# Tolerances: positions closer than this along the normal are the same slice; a slice direction this
# far from the normal is a gantry tilt (real tilts are whole degrees, rounding noise is < 0.01 deg).
DUPLICATE_POSITION_MM = 0.01
TILT_TOLERANCE_DEG = 0.1
ORIENTATION_TOLERANCE = 1e-4
# A gap this many times the spacing its neighbours lead one to expect is a hole: missing slices.
MISSING_GAP_FACTOR = 1.5
GANTRY_TILT_POLICIES = ("correct", "refuse")
UNEVEN_SPACING_POLICIES = ("equalise", "refuse")


@dataclass
class SeriesGeometry:
    """Slices sorted along the slice normal, with the spacing and tilt measured from their positions."""

    order: list[int]  # indices into the series' slices, sorted by position along the normal
    row_cosine: np.ndarray  # LPS direction of increasing column index
    column_cosine: np.ndarray  # LPS direction of increasing row index
    normal: np.ndarray  # row_cosine x column_cosine
    positions_mm: np.ndarray  # ImagePositionPatient of the sorted slices (LPS), shape [n, 3]
    gaps_mm: np.ndarray  # distances between consecutive sorted slices along the normal
    slice_spacing_mm: float  # median gap
    tilt_deg: float  # angle between the normal and the slice-to-slice direction


@dataclass
class SeriesVerdict:
    """Outcome of the series rules: reason is "" when the series is an acceptable axial CT volume."""

    reason: str = ""
    geometry: SeriesGeometry | None = None
    notes: list[str] = field(default_factory=list)
    correction: GridCorrection | None = None  # set when the slices are resampled (tilt, uneven gaps)


def missing_codec(transfer_syntax_uid: str) -> str:
    """The QC reason for compressed pixels pydicom cannot decode here ("" when a decoder is available)."""
    try:
        decoder = get_decoder(transfer_syntax_uid)
    except NotImplementedError:
        return f"pixel data in transfer syntax {transfer_syntax_uid} that pydicom cannot decode"
    if decoder.is_available:
        return ""
    name = UID(transfer_syntax_uid).name or transfer_syntax_uid
    package = CODEC_PACKAGES.get(transfer_syntax_uid, "pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg")
    return f"compressed transfer syntax {name} without a codec: pip install {package} (or python-gdcm)"


def measure_geometry(slices: list[SliceHeader]) -> SeriesGeometry:
    """Sort slices along the normal (row x column cosines) and measure spacing and gantry tilt."""
    orientation = np.asarray(slices[0].orientation, dtype=float)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    positions = np.asarray([s.position for s in slices], dtype=float)
    along_normal = positions @ normal
    # Ties (duplicate positions) keep InstanceNumber order so the result is deterministic.
    order = sorted(range(len(slices)), key=lambda i: (along_normal[i], slices[i].instance_number or 0))
    positions = positions[order]
    gaps = np.diff(along_normal[order])
    spacing = float(np.median(gaps)) if len(gaps) else 0.0
    tilt = 0.0
    if len(slices) > 1:
        step = positions[-1] - positions[0]
        length = float(np.linalg.norm(step))
        if length > 0:
            tilt = float(np.degrees(np.arccos(min(1.0, abs(float(step @ normal)) / length))))
    return SeriesGeometry(order, row_cosine, column_cosine, normal, positions, gaps, spacing, tilt)


def _consistent(slices: list[SliceHeader]) -> str:
    """Name the first header field that differs across slices ("" when all agree)."""
    first = slices[0]
    for name in ("rows", "columns", "bits_allocated", "pixel_representation", "samples_per_pixel"):
        if any(getattr(s, name) != getattr(first, name) for s in slices):
            return name.replace("_", " ")
    for name in ("orientation", "pixel_spacing"):
        reference = np.asarray(getattr(first, name), dtype=float)
        for s in slices:
            value = np.asarray(getattr(s, name), dtype=float)
            if value.shape != reference.shape or not np.allclose(
                value, reference, atol=ORIENTATION_TOLERANCE
            ):
                return name.replace("_", " ")
    return ""


def _spacing_reason(
    slices: list[SliceHeader], geometry: SeriesGeometry, uneven_spacing: str, max_deviation_mm: float
) -> str:
    """The QC reason for missing slices or (when refused) uneven gaps; "" when the gaps are acceptable.

    A gap is a hole (missing slices) when it is at least ``MISSING_GAP_FACTOR`` times both the median
    gap and the mean SliceThickness of the two slices around it: the thickness keeps a protocol that
    changes thickness inside the series (4 mm slices, then 7 mm) from counting as missing slices, the
    median catches a slice missing from a series of overlapping slices.
    """
    gaps, spacing = geometry.gaps_mm, geometry.slice_spacing_mm
    thickness = np.array([slices[i].slice_thickness or 0.0 for i in geometry.order])
    expected = np.maximum(spacing, (thickness[:-1] + thickness[1:]) / 2)
    holes = gaps >= MISSING_GAP_FACTOR * expected
    if holes.any():
        n_missing = int(round(float(np.sum(gaps[holes] / spacing - 1))))
        largest = float(gaps[holes].max())
        return f"missing slices (gap of {largest:.2f} mm where spacing is {spacing:.2f} mm; ~{n_missing} missing)"
    deviation = float(np.abs(gaps - spacing).max())
    if uneven_spacing == "refuse" and deviation > max_deviation_mm:
        return (
            f"uneven slice spacing (gaps {gaps.min():.2f}-{gaps.max():.2f} mm, more than "
            f"max_spacing_deviation_mm {max_deviation_mm:g} from {spacing:.2f} mm; convert.uneven_spacing: refuse)"
        )
    return ""


def _same_pixels(a: SliceHeader, b: SliceHeader) -> bool:
    """Whether two slices hold the same stored pixel values (False when either cannot be read)."""
    from htct.dicom.volume import PixelDataError, read_stored_values  # volume imports this module

    try:
        return bool(np.array_equal(read_stored_values(a), read_stored_values(b)))
    except (PixelDataError, ValueError):
        return False


def drop_identical_copies(slices: list[SliceHeader]) -> tuple[list[SliceHeader], list[SliceHeader], str]:
    """Drop the files that repeat another slice of the series: same position and identical pixels.

    An export that writes one slice twice (the same SOPInstanceUID, or a re-sent copy with a new
    one) loses nothing when the copy goes; two files at one position with different pixels are a
    true conflict, left in place for ``classify_series`` to refuse ("duplicate slice positions").

    Args:
        slices: the headers of one series' files.

    Returns:
        (the slices kept, in their order; the copies dropped; a QC note, "" when none was dropped).
    """
    kept: list[SliceHeader] = []
    at_position: dict[tuple[float, ...], list[SliceHeader]] = {}
    dropped: list[SliceHeader] = []
    same_uid = 0
    for header in slices:
        if header.position is None or len(header.position) != 3:
            kept.append(header)
            continue
        key = tuple(round(value / DUPLICATE_POSITION_MM) for value in header.position)
        original = next((other for other in at_position.get(key, []) if _same_pixels(other, header)), None)
        if original is None:
            at_position.setdefault(key, []).append(header)
            kept.append(header)
            continue
        dropped.append(header)
        same_uid += bool(header.sop_instance_uid) and header.sop_instance_uid == original.sop_instance_uid
    if not dropped:
        return slices, [], ""
    how = (
        "same SOPInstanceUID" if same_uid == len(dropped)
        else "another SOPInstanceUID" if same_uid == 0
        else f"{same_uid} with the same SOPInstanceUID"
    )  # fmt: skip
    copies = (
        "1 identical copy of a slice" if len(dropped) == 1 else f"{len(dropped)} identical copies of slices"
    )
    note = f"{copies} dropped (same position and pixels as another file, {how})"
    return kept, dropped, note


def classify_series(
    slices: list[SliceHeader],
    min_slices: int,
    gantry_tilt: str,
    max_spacing_deviation_mm: float,
    uneven_spacing: str = "refuse",
) -> SeriesVerdict:
    """Apply the series rules in order; the first that fails is the QC reason.

    Args:
        slices: headers of every file of one SeriesInstanceUID.
        min_slices: fewer axial slices than this is "too few slices".
        gantry_tilt: "refuse" excludes tilted series; "correct" plans their resampling onto an
            orthogonal grid (``verdict.correction``).
        max_spacing_deviation_mm: gaps further than this from the median gap are uneven.
        uneven_spacing: "refuse" excludes series with uneven gaps; "equalise" plans their resampling
            onto even spacing. Gaps that leave a hole in the coverage are refused either way.

    Returns:
        The verdict, with the geometry when the slices could be sorted and the correction to apply
        when the series is tilted or unevenly spaced.
    """
    first = slices[0]
    verdict = SeriesVerdict()
    if first.sop_class_uid != CT_IMAGE_STORAGE:
        name = UID(first.sop_class_uid).name if first.sop_class_uid else "unknown"
        what = "secondary capture" if "Secondary Capture" in name else "not an image storage class we handle"
        verdict.reason = f"{what} ({name}); only CT Image Storage is converted"
        return verdict
    if first.modality != "CT":
        verdict.reason = f"modality {first.modality or 'missing'}, not CT"
        return verdict
    if any("LOCALIZER" in s.image_type for s in slices):
        verdict.reason = "scout/localizer (ImageType LOCALIZER)"
        return verdict
    if any(s.samples_per_pixel != 1 or not s.photometric.startswith("MONOCHROME") for s in slices):
        verdict.reason = "not a greyscale image (SamplesPerPixel/PhotometricInterpretation)"
        return verdict
    if any(s.number_of_frames > 1 for s in slices):
        verdict.reason = "multi-frame image (not handled)"
        return verdict
    if any(
        s.orientation is None or len(s.orientation) != 6 or s.position is None or s.pixel_spacing is None
        for s in slices
    ):
        verdict.reason = "missing geometry (ImageOrientationPatient, ImagePositionPatient or PixelSpacing)"
        return verdict
    differing = _consistent(slices)
    if differing:
        verdict.reason = f"inconsistent matrix/orientation across slices ({differing} differs)"
        return verdict
    if first.bits_allocated not in (8, 16, 32):
        verdict.reason = f"BitsAllocated {first.bits_allocated} not handled"
        return verdict
    geometry = measure_geometry(slices)
    verdict.geometry = geometry
    normal = np.abs(geometry.normal)
    if normal[2] < normal[:2].max():
        plane = "sagittal" if normal[0] >= normal[1] else "coronal"
        verdict.reason = f"not axial ({plane} orientation: scout, localizer or reformat)"
        return verdict
    n_duplicates = int(np.sum(geometry.gaps_mm < DUPLICATE_POSITION_MM))
    if n_duplicates:
        verdict.reason = f"duplicate slice positions ({n_duplicates} slice(s) at an already used position)"
        return verdict
    if len(slices) < min_slices:
        verdict.reason = f"too few slices ({len(slices)} < min_slices {min_slices})"
        return verdict
    tag_tilt = max((abs(s.gantry_tilt) for s in slices if s.gantry_tilt is not None), default=0.0)
    tilted = geometry.tilt_deg > TILT_TOLERANCE_DEG
    if tilted and gantry_tilt == "refuse":
        verdict.reason = (
            f"gantry tilt {geometry.tilt_deg:.1f} deg (GantryDetectorTilt {tag_tilt:g}); sheared slices are "
            "refused (convert.gantry_tilt: refuse)"
        )
        return verdict
    if not tilted and tag_tilt > TILT_TOLERANCE_DEG:
        verdict.notes.append(
            f"GantryDetectorTilt {tag_tilt:g} but slices are orthogonal to the plane (already resampled)"
        )
    reason = _spacing_reason(slices, geometry, uneven_spacing, max_spacing_deviation_mm)
    if reason:
        verdict.reason = reason
        return verdict
    uneven = bool(np.abs(geometry.gaps_mm - geometry.slice_spacing_mm).max() > max_spacing_deviation_mm)
    if tilted or uneven:
        verdict.correction = plan_correction(
            geometry, first.rows, first.columns, first.pixel_spacing,  # type: ignore[arg-type]
            correct_tilt=tilted, equalise_gaps=uneven,
        )  # fmt: skip
        verdict.notes.append(verdict.correction.describe())
    missing = sum(not s.has_pixel_data for s in slices)
    if missing:
        verdict.reason = (
            f"missing pixel data ({missing} of {len(slices)} files end before it: truncated copies?)"
        )
        return verdict
    truncated = sum(s.is_native and s.pixels_truncated for s in slices)
    if truncated:
        verdict.reason = f"truncated pixel data ({truncated} of {len(slices)} files end early)"
        return verdict
    for transfer_syntax in sorted({s.transfer_syntax_uid for s in slices if not s.is_native}):
        reason = missing_codec(transfer_syntax)
        if reason:
            verdict.reason = reason
            return verdict
    if any(s.rescale_slope is None or s.rescale_intercept is None for s in slices):
        verdict.notes.append("RescaleSlope/RescaleIntercept missing: assumed 1/0")
    return verdict
