"""Geometry of the crop: slice resampling to a fixed thickness, the slab and in-plane box, and the inverse.

Axes: every array here is (slice, i, j) -- the NIfTI voxel axes with the slice axis k moved first, so
``volume[z, a, b]`` lies at voxel (i=a, j=b, k=z) of the scan. Positions are in voxel-index units
(the centre of voxel n is at n), which is what the NIfTI affine maps to world coordinates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: HU used for everything outside the scan (padding slices, box beyond the field of view): air.
AIR_HU = -1000.0

#: Relative tolerance under which a series is taken to already have the target slice thickness.
THICKNESS_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CropInfo:
    """Everything needed to repeat a scan's crop on another volume in its grid, or to invert it.

    Slice axis: output slab slice ``s`` is resampled slice ``z = z_first + s``, whose centre lies at
    source slice position ``z_start_src + z * z_step_src``; ``z`` outside ``[0, n_resampled)`` is
    air padding. In-plane: output pixel ``p`` along i samples source position
    ``box_centre_i + (p + 0.5 - size / 2) * step_i`` (likewise j), so the output covers a square box of
    ``box_side_mm`` millimetres centred on ``(box_centre_i, box_centre_j)``.
    """

    source_shape_i: int
    source_shape_j: int
    source_shape_k: int
    spacing_i_mm: float
    spacing_j_mm: float
    source_thickness_mm: float
    slice_thickness_mm: float
    n_resampled: int
    z_start_src: float
    z_step_src: float
    n_slices: int
    z_first: int
    n_pad_before: int
    n_pad_after: int
    n_brain_slices: int
    n_brain_slices_scan: int
    size: int
    box_centre_i: float
    box_centre_j: float
    box_side_mm: float
    box_source: str

    @property
    def step_i(self) -> float:
        """Source voxels (along i) per output pixel."""
        return self.box_side_mm / self.spacing_i_mm / self.size

    @property
    def step_j(self) -> float:
        """Source voxels (along j) per output pixel."""
        return self.box_side_mm / self.spacing_j_mm / self.size

    @property
    def source_shape(self) -> tuple[int, int, int]:
        """Shape (i, j, k) of the scan's NIfTI voxel grid."""
        return (self.source_shape_i, self.source_shape_j, self.source_shape_k)

    def to_dict(self) -> dict[str, int | float | str]:
        """Flat dict of the fields (the crop columns of ``index.tsv``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, row: dict) -> CropInfo:
        """Rebuild from a mapping holding at least the fields (e.g. a row of ``index.tsv``)."""
        kwargs = {}
        for field in dataclasses.fields(cls):
            value = row[field.name]
            kwargs[field.name] = (
                str(value) if field.type == "str" else (int if field.type == "int" else float)(value)
            )
        return cls(**kwargs)


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel spacing (i, j, k) in mm: the lengths of the affine's first three columns.

    Args:
        affine: 4x4 voxel-to-world matrix.

    Returns:
        Spacing along i, j and k (k: the slice spacing, used as the slice thickness).
    """
    norms = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    return float(norms[0]), float(norms[1]), float(norms[2])


def slice_resampling_matrix(
    n_source: int, source_thickness_mm: float, slice_thickness_mm: float
) -> tuple[np.ndarray, float, float]:
    """Weights that turn ``n_source`` slices into slices of ``slice_thickness_mm``.

    The output covers the same z extent as the source (``n_source * source_thickness_mm``), with
    ``round(extent / slice_thickness_mm)`` slices centred on it. Thinner source slices are
    *averaged* over each output slab, each weighted by its overlap in mm (2.5 mm -> 5 mm averages
    aligned pairs; 3 mm -> 5 mm weights 3 + 2 mm): what a scanner reconstructing thicker slices
    does. Thicker source slices are *linearly interpolated* at the output slice centres. A
    series already at the target thickness gets the identity.

    Written as an explicit matrix (rather than scipy.ndimage.zoom) because zoom has no area
    averaging, and the same matrix must apply to lesion masks and invert for heatmaps.

    Args:
        n_source: number of source slices.
        source_thickness_mm: source slice spacing in mm.
        slice_thickness_mm: target slice thickness in mm.

    Returns:
        ``(weights, z_start_src, z_step_src)``: weights [n_out, n_source] whose rows sum to 1;
        output slice ``m`` is centred at source slice position ``z_start_src + m * z_step_src``.
    """
    ratio = slice_thickness_mm / source_thickness_mm
    if abs(ratio - 1.0) < THICKNESS_TOLERANCE:
        return np.eye(n_source), 0.0, 1.0
    extent_mm = n_source * source_thickness_mm
    n_out = max(1, int(np.floor(extent_mm / slice_thickness_mm + 0.5)))
    offset_mm = (extent_mm - n_out * slice_thickness_mm) / 2.0
    z_start_src = (offset_mm + slice_thickness_mm / 2.0) / source_thickness_mm - 0.5
    z_step_src = ratio
    weights = np.zeros((n_out, n_source))
    if ratio > 1.0:
        out_lo = offset_mm + np.arange(n_out)[:, None] * slice_thickness_mm
        out_hi = out_lo + slice_thickness_mm
        src_lo = np.arange(n_source)[None, :] * source_thickness_mm
        src_hi = src_lo + source_thickness_mm
        weights = np.clip(np.minimum(out_hi, src_hi) - np.maximum(out_lo, src_lo), 0.0, None)
    else:
        centres = np.clip(z_start_src + np.arange(n_out) * z_step_src, 0.0, n_source - 1.0)
        below = np.minimum(np.floor(centres).astype(int), n_source - 1)
        above = np.minimum(below + 1, n_source - 1)
        frac = centres - below
        np.add.at(weights, (np.arange(n_out), below), 1.0 - frac)
        np.add.at(weights, (np.arange(n_out), above), frac)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights, float(z_start_src), float(z_step_src)


def resample_slices(volume: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Apply slice weights from :func:`slice_resampling_matrix` to a (slice, i, j) volume.

    Args:
        volume: array [n_source, I, J].
        weights: array [n_out, n_source].

    Returns:
        float32 array [n_out, I, J].
    """
    if weights.shape[0] == weights.shape[1] and np.array_equal(weights, np.eye(weights.shape[0])):
        return volume.astype(np.float32, copy=False)
    flat = volume.reshape(volume.shape[0], -1).astype(np.float32, copy=False)
    return (weights.astype(np.float32) @ flat).reshape((weights.shape[0],) + volume.shape[1:])


def choose_slab(brain_area: np.ndarray, n_slices: int) -> tuple[int, int, int]:
    """Pick the ``n_slices`` consecutive slices holding the most intracranial tissue.

    Ties (the whole brain fits in several windows) go to the window whose centre is closest to
    the brain's centre of mass along z, then to the lower start. With fewer slices than
    ``n_slices`` all are kept and the rest is split evenly before/after (one more after if odd).

    Args:
        brain_area: intracranial area (any unit) per resampled slice, length Z.
        n_slices: slab length.

    Returns:
        ``(z_first, n_pad_before, n_pad_after)``; ``z_first`` is negative when padding before.
    """
    n_total = len(brain_area)
    if n_total <= n_slices:
        pad_before = (n_slices - n_total) // 2
        return -pad_before, pad_before, n_slices - n_total - pad_before
    area = np.asarray(brain_area, dtype=float)
    window_sums = np.convolve(area, np.ones(n_slices), mode="valid")
    total = area.sum()
    brain_centre = (np.arange(n_total) * area).sum() / total if total > 0 else (n_total - 1) / 2.0
    starts = np.flatnonzero(window_sums >= window_sums.max() - 1e-9 * max(total, 1.0))
    distance = np.abs(starts + (n_slices - 1) / 2.0 - brain_centre)
    return int(starts[np.argmin(distance)]), 0, 0


def take_slab(volume: np.ndarray, z_first: int, n_slices: int, fill: float) -> np.ndarray:
    """Slices ``z_first .. z_first + n_slices - 1`` of a (slice, i, j) volume, ``fill`` where absent."""
    slab = np.full((n_slices,) + volume.shape[1:], fill, dtype=np.float32)
    lo, hi = max(z_first, 0), min(z_first + n_slices, volume.shape[0])
    if hi > lo:
        slab[lo - z_first : hi - z_first] = volume[lo:hi]
    return slab


def square_box(
    region: np.ndarray, spacing_i_mm: float, spacing_j_mm: float, margin_mm: float
) -> tuple[float, float, float] | None:
    """Square box (in mm) around the in-plane bounding box of ``region``, with a margin.

    Args:
        region: boolean array [Z, I, J]; its projection on the (i, j) plane is boxed.
        spacing_i_mm: pixel spacing along i.
        spacing_j_mm: pixel spacing along j.
        margin_mm: added on every side of the bounding box.

    Returns:
        ``(centre_i, centre_j, side_mm)`` in voxel-index units / mm, or None if ``region`` is empty.
    """
    projection = region.any(axis=0)
    rows, cols = np.flatnonzero(projection.any(axis=1)), np.flatnonzero(projection.any(axis=0))
    if rows.size == 0:
        return None
    centre_i, centre_j = (rows[0] + rows[-1]) / 2.0, (cols[0] + cols[-1]) / 2.0
    extent_mm = max((rows[-1] - rows[0] + 1) * spacing_i_mm, (cols[-1] - cols[0] + 1) * spacing_j_mm)
    return float(centre_i), float(centre_j), float(extent_mm + 2.0 * margin_mm)


def resample_plane(
    slab: np.ndarray,
    centre_i: float,
    centre_j: float,
    step_i: float,
    step_j: float,
    size: int,
    fill: float,
    antialias: bool = True,
) -> np.ndarray:
    """Resample a (slice, i, j) slab in-plane onto a ``size`` x ``size`` grid (linear).

    Output pixel ``p`` samples source position ``centre + (p + 0.5 - size / 2) * step``. When
    downsampling (step > 1) a Gaussian prefilter with sigma ``(step - 1) / 2`` source pixels
    (scikit-image's ``resize`` anti-aliasing rule) suppresses aliasing of fine texture and noise.

    Args:
        slab: array [n, I, J].
        centre_i: box centre along i (voxel units); likewise ``centre_j``.
        centre_j: box centre along j.
        step_i: source pixels per output pixel along i; likewise ``step_j``.
        step_j: source pixels per output pixel along j.
        size: output in-plane size.
        fill: value outside the source image.
        antialias: apply the Gaussian prefilter when downsampling.

    Returns:
        float32 array [n, size, size].
    """
    source = slab.astype(np.float32, copy=False)
    sigma = (0.0, max(0.0, (step_i - 1.0) / 2.0), max(0.0, (step_j - 1.0) / 2.0))
    if antialias and max(sigma) > 0:
        source = ndimage.gaussian_filter(source, sigma, mode="nearest", truncate=3.0)
    offset = (
        0.0,
        centre_i + (0.5 - size / 2.0) * step_i,
        centre_j + (0.5 - size / 2.0) * step_j,
    )
    return ndimage.affine_transform(
        source,
        np.array([1.0, step_i, step_j]),
        offset=offset,
        output_shape=(slab.shape[0], size, size),
        order=1,
        mode="constant",
        cval=fill,
        prefilter=False,
    )


def apply_crop(volume_kij: np.ndarray, crop: CropInfo, fill: float, antialias: bool = True) -> np.ndarray:
    """Repeat a scan's crop (slice resampling, slab, in-plane box) on a volume in its voxel grid.

    Args:
        volume_kij: array [K, I, J] in the scan's grid (slice axis first).
        crop: the scan's crop.
        fill: value for padding slices and outside the field of view.
        antialias: Gaussian prefilter when downsampling in-plane.

    Returns:
        float32 array [n_slices, size, size].
    """
    if volume_kij.shape != (crop.source_shape_k, crop.source_shape_i, crop.source_shape_j):
        raise ValueError(f"volume of shape {volume_kij.shape} is not in the crop's grid {crop.source_shape}")
    weights, _, _ = slice_resampling_matrix(
        crop.source_shape_k, crop.source_thickness_mm, crop.slice_thickness_mm
    )
    slab = take_slab(resample_slices(volume_kij, weights), crop.z_first, crop.n_slices, fill)
    return resample_plane(
        slab, crop.box_centre_i, crop.box_centre_j, crop.step_i, crop.step_j, crop.size, fill, antialias
    )


def uncrop_to_scan(
    crop_map: np.ndarray, crop_info: CropInfo, shape: tuple[int, int, int] | None = None
) -> np.ndarray:
    """Map a [n_slices, size, size] map (e.g. an attention heatmap) back onto the scan's voxel grid.

    Linear interpolation at every scan voxel's position in the crop; voxels outside the crop (beyond
    the box or the slab) get 0. The result is in NIfTI axis order (i, j, k), ready for
    ``nibabel.Nifti1Image(result, scan_affine)``.

    Args:
        crop_map: array [n_slices, size, size] in the crop's grid.
        crop_info: the scan's :class:`CropInfo`.
        shape: the scan's NIfTI shape (i, j, k); defaults to the one recorded in ``crop_info``.

    Returns:
        float32 array of ``shape``.
    """
    shape = tuple(shape) if shape is not None else crop_info.source_shape
    if shape != crop_info.source_shape:
        raise ValueError(f"shape {shape} differs from the scan grid {crop_info.source_shape} of the crop")
    expected = (crop_info.n_slices, crop_info.size, crop_info.size)
    if crop_map.shape != expected:
        raise ValueError(f"map of shape {crop_map.shape}, expected {expected}")
    size = crop_info.size
    # Position of scan voxel n in crop coordinates, per axis (the mapping is separable).
    scale = np.array([1.0 / crop_info.z_step_src, 1.0 / crop_info.step_i, 1.0 / crop_info.step_j])
    offset = np.array(
        [
            -crop_info.z_start_src / crop_info.z_step_src - crop_info.z_first,
            size / 2.0 - 0.5 - crop_info.box_centre_i / crop_info.step_i,
            size / 2.0 - 0.5 - crop_info.box_centre_j / crop_info.step_j,
        ]
    )
    out_shape_kij = (shape[2], shape[0], shape[1])
    # mode="nearest" + explicit masks: a crop pixel covers [p - 0.5, p + 0.5], so scan voxels in the
    # outer half-pixel take the edge value instead of fading to 0.
    values = ndimage.affine_transform(
        crop_map.astype(np.float32), scale, offset=offset, output_shape=out_shape_kij, order=1, mode="nearest"
    )
    inside = [
        np.abs(np.arange(n) * scale[axis] + offset[axis] - (limit - 1) / 2.0) <= limit / 2.0
        for axis, (n, limit) in enumerate(zip(out_shape_kij, crop_map.shape, strict=True))
    ]
    values *= inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
    return np.ascontiguousarray(values.transpose(1, 2, 0))
