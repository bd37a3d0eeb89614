"""Gantry tilt correction and slice-gap equalisation: sheared or unevenly spaced slices onto an even grid.

A series acquired with the gantry tilted is a stack of parallel slice planes whose origins step along
the table (scanner z), not along the planes' normal: stacked as they are, the head is sheared. Some
head protocols also change the slice spacing inside one series (4 mm through the posterior fossa, 7 mm
above), which no NIfTI affine can hold. This module resamples both onto an orthogonal grid with even
spacing, the way dcm2niix's tilt-corrected, gap-equalised output (``*_Tilt_Eq_1.nii``) does:

- the output keeps the acquisition's in-plane grid (row and column cosines, pixel spacing) and puts
  its slices along the planes' normal, so every output slice lies in the plane of an input slice or
  between two of them;
- **tilt**: each slice is moved within its own plane by the offset of its ImagePositionPatient from
  the first slice's, projected on the row and column cosines (bilinear interpolation in the plane;
  dcm2niix, ``nii_saveNII3Dtilt``, shifts rows by ``tan(tilt) * distance / row spacing`` with linear
  interpolation, which is the same offset for a tilt about the x axis). Taking the offset from the
  positions rather than from GantryDetectorTilt avoids the vendor-specific sign conventions of that
  tag (which the standard calls "not intended for mathematical computations"). The row (or column)
  range grows to hold every moved slice; voxels no slice covers get the darkest value of the series
  (its padding value on most scanners), as in dcm2niix;
- **uneven gaps**: output slices lie at even steps along the normal from the first slice to the last
  and are interpolated linearly between the two input slices around them (dcm2niix ``nii_saveNII3Deq``).
  The step is the smallest gap between input slices, but no more than twice as many slices as the input
  (dcm2niix's rule); unlike dcm2niix, the grid always ends on the last slice (its uncapped rule can
  stop up to half a gap short).

Interpolation runs in float32 HU; the result is rounded to int16 HU when the series stores integer HU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # series.py plans the correction with this module
    from htct.dicom.series import SeriesGeometry

#: In-plane offsets below this (pixels) are rounding noise of ImagePositionPatient, not a shear.
SHIFT_TOLERANCE_PX = 1e-3
#: dcm2niix's cap on equalisation: at most this many output slices per input slice.
MAX_SLICES_PER_INPUT = 2


@dataclass(frozen=True)
class GridCorrection:
    """The orthogonal, evenly spaced grid a sheared or unevenly spaced series is resampled onto.

    Indices are those of the sorted input slices (``SeriesGeometry.order``) and of DICOM rows/columns.
    Output row ``r`` (``row_start <= r < row_start + n_rows``) of output slice ``s`` lies at
    ImagePositionPatient(first slice) + r * row spacing * column cosine + c * column spacing * row
    cosine + s * ``spacing_mm`` * normal.
    """

    tilt_deg: float
    row_shift_px: np.ndarray  # per input slice: offset of its origin from the first slice's, in rows
    column_shift_px: np.ndarray  # the same in columns
    distance_mm: np.ndarray  # per input slice: distance from the first slice along the normal
    row_start: int
    n_rows: int
    column_start: int
    n_columns: int
    spacing_mm: float
    n_slices: int
    equalised: bool  # True when slices are interpolated between input slices (uneven gaps)

    @property
    def sheared(self) -> bool:
        """Slices are moved within their plane (gantry tilt)."""
        return bool(np.any(self.row_shift_px != 0) or np.any(self.column_shift_px != 0))

    @property
    def output_positions_mm(self) -> np.ndarray:
        """Distance of each output slice from the first input slice along the normal."""
        return np.arange(self.n_slices) * self.spacing_mm

    def describe(self) -> str:
        """One line for the QC table, e.g. "gantry tilt 18.50 deg; gaps 1.08-6.99 mm equalised to 2.620 mm"."""
        parts = []
        if self.sheared:
            parts.append(f"gantry tilt {self.tilt_deg:.2f} deg resampled to an orthogonal grid")
        if self.equalised:
            gaps = np.diff(self.distance_mm)
            parts.append(
                f"uneven gaps {gaps.min():.2f}-{gaps.max():.2f} mm equalised to {self.spacing_mm:.3f} mm "
                f"({len(self.distance_mm)} -> {self.n_slices} slices)"
            )
        return "; ".join(parts)


def _equalised_grid(distance_mm: np.ndarray) -> tuple[float, int]:
    """Even spacing and slice count from the first to the last slice (dcm2niix's rule, see module doc)."""
    extent = float(distance_mm[-1])
    gaps = np.diff(distance_mm)
    smallest = float(gaps[gaps > 0].min())
    n_slices = min(math.ceil(extent / smallest - 1e-6) + 1, MAX_SLICES_PER_INPUT * len(distance_mm))
    return extent / (n_slices - 1), n_slices


def plan_correction(
    geometry: SeriesGeometry,
    rows: int,
    columns: int,
    pixel_spacing: tuple[float, float],
    *,
    correct_tilt: bool,
    equalise_gaps: bool,
) -> GridCorrection:
    """The output grid of a tilted and/or unevenly spaced series.

    Args:
        geometry: the sorted slices' geometry (``measure_geometry``).
        rows, columns: matrix of the input slices.
        pixel_spacing: PixelSpacing (between rows, between columns) in mm.
        correct_tilt: move the slices within their plane (the series is tilted).
        equalise_gaps: interpolate onto even spacing (the gaps are uneven).

    Returns:
        The grid.
    """
    offsets = geometry.positions_mm - geometry.positions_mm[0]
    distance = offsets @ geometry.normal
    row_shift = offsets @ geometry.column_cosine / pixel_spacing[0]
    column_shift = offsets @ geometry.row_cosine / pixel_spacing[1]
    if not correct_tilt:
        row_shift, column_shift = np.zeros_like(row_shift), np.zeros_like(column_shift)
    row_shift[np.abs(row_shift) < SHIFT_TOLERANCE_PX] = 0.0
    column_shift[np.abs(column_shift) < SHIFT_TOLERANCE_PX] = 0.0
    # The output rows run from the lowest to the highest row any moved slice reaches.
    row_start = math.floor(row_shift.min() + SHIFT_TOLERANCE_PX)
    row_stop = math.ceil(row_shift.max() - SHIFT_TOLERANCE_PX) + rows
    column_start = math.floor(column_shift.min() + SHIFT_TOLERANCE_PX)
    column_stop = math.ceil(column_shift.max() - SHIFT_TOLERANCE_PX) + columns
    if equalise_gaps:
        spacing, n_slices = _equalised_grid(distance)
    else:
        spacing, n_slices = float(distance[-1]) / (len(distance) - 1), len(distance)
    return GridCorrection(
        tilt_deg=geometry.tilt_deg,
        row_shift_px=row_shift,
        column_shift_px=column_shift,
        distance_mm=distance,
        row_start=row_start,
        n_rows=row_stop - row_start,
        column_start=column_start,
        n_columns=column_stop - column_start,
        spacing_mm=spacing,
        n_slices=n_slices,
        equalised=equalise_gaps,
    )


def corrected_affine_lps(
    geometry: SeriesGeometry, pixel_spacing: tuple[float, float], grid: GridCorrection
) -> np.ndarray:
    """LPS voxel-to-world affine of the grid, for (i = column, j = row, k = slice) as stored by DICOM."""
    row_spacing, column_spacing = pixel_spacing
    affine = np.eye(4)
    affine[:3, 0] = geometry.row_cosine * column_spacing
    affine[:3, 1] = geometry.column_cosine * row_spacing
    affine[:3, 2] = geometry.normal * grid.spacing_mm
    affine[:3, 3] = (
        geometry.positions_mm[0]
        + grid.row_start * row_spacing * geometry.column_cosine
        + grid.column_start * column_spacing * geometry.row_cosine
    )
    return affine


def _shift_axis(
    image: np.ndarray, axis: int, shift: float, start: int, length: int, fill: float
) -> np.ndarray:
    """Linear resampling along one axis: ``out[o] = image[o + start - shift]``, ``fill`` outside the image.

    The whole slice moves by one shift, so each output line is a blend of two neighbouring input lines
    with the same two weights: two array operations instead of per-pixel interpolation
    (scipy.ndimage.affine_transform, order 1, gives the same values at ~40x the time: 44 vs ~1 ms per
    512 x 611 slice, measured with benchmarks/bench_convert.py's tilted series).
    """
    if shift == 0 and start == 0 and length == image.shape[axis]:
        return image
    image = np.moveaxis(image, axis, 0)
    out = np.full((length, *image.shape[1:]), fill, dtype=np.float32)
    position = start - shift  # input coordinate of output line 0
    base = math.floor(position + 1e-9)
    weight = np.float32(position - base if position - base > 1e-9 else 0.0)
    n = image.shape[0]
    last = n - 1 if weight == 0 else n - 2  # the last input line a blend may start from
    first_out, stop_out = max(0, -base), min(length, last - base + 1)
    if stop_out > first_out:
        lower = image[first_out + base : stop_out + base]
        if weight == 0:
            out[first_out:stop_out] = lower
        else:
            upper = image[first_out + base + 1 : stop_out + base + 1]
            np.multiply(lower, np.float32(1.0) - weight, out=out[first_out:stop_out])
            out[first_out:stop_out] += weight * upper
    return np.moveaxis(out, 0, axis)


def _move_in_plane(hu_slice: np.ndarray, k: int, grid: GridCorrection, fill: float) -> np.ndarray:
    """Input slice k on the output rows/columns: bilinear (separable) at (r - row shift, c - column shift)."""
    moved = _shift_axis(hu_slice, 0, grid.row_shift_px[k], grid.row_start, grid.n_rows, fill)
    return _shift_axis(moved, 1, grid.column_shift_px[k], grid.column_start, grid.n_columns, fill)


def resample_to_grid(hu: np.ndarray, grid: GridCorrection) -> np.ndarray:
    """Resample the sorted input slices onto the grid.

    Args:
        hu: float32 HU [slice, row, column] in the order of ``SeriesGeometry.order``.
        grid: from ``plan_correction``.

    Returns:
        float32 HU [grid.n_slices, grid.n_rows, grid.n_columns].
    """
    fill = float(hu.min())
    in_plane = grid.n_rows != hu.shape[1] or grid.n_columns != hu.shape[2] or grid.sheared
    moved = np.stack([_move_in_plane(hu[k], k, grid, fill) for k in range(len(hu))]) if in_plane else hu
    if not grid.equalised:
        return np.ascontiguousarray(moved, dtype=np.float32)
    out = np.empty((grid.n_slices, grid.n_rows, grid.n_columns), dtype=np.float32)
    distance = grid.distance_mm
    for s, position in enumerate(grid.output_positions_mm):
        upper = int(np.clip(np.searchsorted(distance, position), 1, len(distance) - 1))
        weight = float(
            np.clip((position - distance[upper - 1]) / (distance[upper] - distance[upper - 1]), 0, 1)
        )
        np.multiply(moved[upper - 1], np.float32(1.0 - weight), out=out[s])
        out[s] += np.float32(weight) * moved[upper]
    return out
