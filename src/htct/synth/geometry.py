"""Geometry of a synthetic axial CT series: DICOM header values and the NIfTI (RAS+) affine.

One object holds the numbers written to the headers (ImagePositionPatient, ImageOrientationPatient,
PixelSpacing, spacing between slices) and derives the voxel-to-world affine from exactly those
numbers, so the lesion masks and the DICOM files cannot disagree.

Affine conventions. :meth:`SeriesGeometry.affine_ras` is the affine of the *DICOM-order* grid:

- voxel axes: ``i`` = column index (along the DICOM row direction, ImageOrientationPatient[0:3]),
  ``j`` = row index (along the column direction, ImageOrientationPatient[3:6]),
  ``k`` = slice, in order of increasing position along the slice normal
  ``n = row_cosine x column_cosine`` (not InstanceNumber order);
- LPS world position of voxel (i, j, k)::

      p_LPS = IPP_0 + i * dc * row_cosine + j * dr * column_cosine + k * ds * n

  where IPP_0 is ImagePositionPatient of the slice with the smallest position along ``n``,
  ``PixelSpacing = [dr, dc]`` (row spacing, then column spacing, as DICOM orders it) and ``ds`` is
  SpacingBetweenSlices;
- in RAS+ (nibabel / NIfTI convention): ``affine = diag(-1, -1, 1, 1) @ A_LPS``, i.e. the x and y
  rows of the LPS affine change sign. Its data array is ``volume[i, j, k]``, the DICOM pixel arrays
  ``[row, col]`` stacked by slice and transposed to ``[col, row, slice]``.

The truth masks (``truth/masks/{scan_id}.nii.gz``) are in the grid of the *converted* scan, which
``htct.dicom`` reorients to the closest RAS+ axis order (i -> R, j -> A, k -> S): that is the
DICOM-order grid passed through ``nibabel.as_closest_canonical``. For the synthetic series
(ImageOrientationPatient ``[1, 0, 0, 0, 1, 0]``) this reverses ``i`` and ``j``::

    affine_mask = affine_ras @ F,  F = [[-1, 0, 0, columns - 1], [0, -1, 0, rows - 1], [0, 0, 1, 0], [0, 0, 0, 1]]

(dcm2niix's default output is the DICOM-order grid with only ``j`` reversed.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SeriesGeometry:
    """Geometry of one axial series, in the numbers written to its DICOM headers.

    Attributes:
        rows: image rows (Rows).
        columns: image columns (Columns).
        row_spacing_mm: PixelSpacing[0], distance between the centres of adjacent rows.
        column_spacing_mm: PixelSpacing[1], distance between the centres of adjacent columns.
        slice_spacing_mm: SpacingBetweenSlices (equal to SliceThickness here: contiguous slices).
        first_position_lps: ImagePositionPatient of the slice with the lowest position along the
            normal (voxel k = 0).
        row_cosine: ImageOrientationPatient[0:3].
        column_cosine: ImageOrientationPatient[3:6].
        n_slices: number of slices.
    """

    rows: int
    columns: int
    row_spacing_mm: float
    column_spacing_mm: float
    slice_spacing_mm: float
    first_position_lps: tuple[float, float, float]
    row_cosine: tuple[float, float, float] = (1.0, 0.0, 0.0)
    column_cosine: tuple[float, float, float] = (0.0, 1.0, 0.0)
    n_slices: int = 1

    @property
    def normal(self) -> np.ndarray:
        """Slice normal, row_cosine x column_cosine."""
        return np.cross(np.asarray(self.row_cosine), np.asarray(self.column_cosine))

    def slice_positions_lps(self) -> np.ndarray:
        """ImagePositionPatient of every slice, shape [n_slices, 3], in k order (ascending)."""
        k = np.arange(self.n_slices, dtype=float)[:, None]
        return (
            np.asarray(self.first_position_lps, dtype=float)[None, :]
            + k * self.slice_spacing_mm * self.normal
        )

    def affine_lps(self) -> np.ndarray:
        """4x4 voxel (i, j, k) -> LPS mm affine."""
        affine = np.eye(4)
        affine[:3, 0] = np.asarray(self.row_cosine) * self.column_spacing_mm
        affine[:3, 1] = np.asarray(self.column_cosine) * self.row_spacing_mm
        affine[:3, 2] = self.normal * self.slice_spacing_mm
        affine[:3, 3] = self.first_position_lps
        return affine

    def affine_ras(self) -> np.ndarray:
        """4x4 voxel (i, j, k) -> RAS+ mm affine, the NIfTI affine of the converted scan."""
        return LPS_TO_RAS @ self.affine_lps()

    def world_grid_lps(self, z_offsets_mm: np.ndarray | None = None) -> np.ndarray:
        """LPS coordinates of every voxel centre, shape [n_slices, rows, columns, 3] (float32).

        Args:
            z_offsets_mm: optional offsets along the normal added to every slice position (used to
                sample within the slab of a thick slice); when given, a leading axis is added:
                [n_offsets, n_slices, rows, columns, 3].
        """
        affine = self.affine_lps().astype(np.float32)
        i = np.arange(self.columns, dtype=np.float32)
        j = np.arange(self.rows, dtype=np.float32)
        k = np.arange(self.n_slices, dtype=np.float32)
        in_plane = i[None, :, None] * affine[:3, 0] + j[:, None, None] * affine[:3, 1]  # [rows, cols, 3]
        grid = k[:, None, None, None] * affine[:3, 2] + in_plane[None] + affine[:3, 3]
        if z_offsets_mm is None:
            return grid
        normal = self.normal.astype(np.float32)
        offsets = np.asarray(z_offsets_mm, dtype=np.float32)
        return grid[None] + offsets[:, None, None, None, None] * normal
