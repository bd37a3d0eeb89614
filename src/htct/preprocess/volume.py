"""One scan, HU volume -> model-ready array: resample slices, pick the brain slab, crop, resize, window.

Order of operations (see docs/preprocessing.md):

1. HU clipped to [-1024, 3071] (the 12-bit CT range) so out-of-field padding values such as -2000 or
   -3024 do not bleed into the head through interpolation;
2. slices resampled to ``slice_thickness_mm`` (:func:`~htct.preprocess.geometry.slice_resampling_matrix`);
3. intracranial mask (:func:`~htct.preprocess.brain.intracranial_mask`) on a ~1 mm working grid
   (block means of the slices; morphology at 0.45 mm would cost 5x more for the same mask);
4. the ``n_slices`` slab with the most intracranial tissue, air-padded when the scan is shorter;
5. a square box around the head (:func:`~htct.preprocess.brain.head_mask`): its in-plane bounding box
   over the slab, squared on the longer side plus ``margin_mm`` on every side, resampled to ``size`` x ``size`` (linear, anti-aliased);
6. HU windows, one channel each: clip to [c - w/2, c + w/2], scale to [0, 1];
7. optional skull stripping: every channel set to 0 outside the intracranial mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from htct.preprocess.brain import head_mask, intracranial_mask
from htct.preprocess.geometry import (
    AIR_HU,
    CropInfo,
    choose_slab,
    resample_plane,
    resample_slices,
    slice_resampling_matrix,
    square_box,
    take_slab,
    voxel_spacing,
)

HU_RANGE = (-1024.0, 3071.0)
#: Pixel size (mm) of the grid the intracranial mask is computed on (at least the scan's own).
MASK_GRID_MM = 1.0
#: Air added on every side of the head's bounding box.
MARGIN_MM = 5.0
#: Slices with at least this much intracranial area (mm^2) count as brain slices in index.tsv.
MIN_BRAIN_AREA_MM2 = 100.0

BRAIN_WINDOW = (40.0, 80.0)
SUBDURAL_WINDOW = (80.0, 200.0)
BONE_WINDOW = (600.0, 2800.0)


def apply_windows(hu: np.ndarray, windows: Sequence[Sequence[float]]) -> np.ndarray:
    """HU windows as channels: clip to [centre - width/2, centre + width/2], then scale to [0, 1].

    Args:
        hu: HU array of any shape.
        windows: (centre, width) pairs in HU, e.g. ``[(40, 80)]`` for the brain window.

    Returns:
        float32 array [len(windows), *hu.shape].

    Example:
        >>> apply_windows(np.array([-1000.0, 0.0, 40.0, 60.0, 500.0]), [(40, 80)])[0].tolist()
        [0.0, 0.0, 0.5, 0.75, 1.0]
    """
    channels = np.empty((len(windows),) + hu.shape, dtype=np.float32)
    for channel, (centre, width) in enumerate(windows):
        if width <= 0:
            raise ValueError(f"window width must be positive, got {width}")
        low = centre - width / 2.0
        np.clip(hu, low, low + width, out=channels[channel], casting="unsafe")
        channels[channel] -= low
        channels[channel] /= width
    return channels


def _block_mean(volume: np.ndarray, factor_i: int, factor_j: int) -> np.ndarray:
    """In-plane block means (area downsampling) by integer factors; edge rows/columns that do not fill a block are dropped."""
    if factor_i == 1 and factor_j == 1:
        return volume
    z, i, j = volume.shape
    i_cut, j_cut = i // factor_i * factor_i, j // factor_j * factor_j
    blocks = volume[:, :i_cut, :j_cut].reshape(z, i_cut // factor_i, factor_i, j_cut // factor_j, factor_j)
    return blocks.mean(axis=(2, 4))


def preprocess_volume(
    hu: np.ndarray,
    affine: np.ndarray,
    n_slices: int = 28,
    slice_thickness_mm: float = 5.0,
    size: int = 96,
    windows: Sequence[Sequence[float]] = (BRAIN_WINDOW,),
    skull_strip: bool = False,
    margin_mm: float = MARGIN_MM,
) -> tuple[np.ndarray, np.ndarray, CropInfo]:
    """Turn one scan's HU volume into the model's input.

    Args:
        hu: HU volume in NIfTI voxel order (i, j, k), k the slice axis.
        affine: the scan's 4x4 voxel-to-world affine (spacings are read from it).
        n_slices: slices kept (the paper's 28).
        slice_thickness_mm: slice thickness the series is resampled to.
        size: in-plane output size.
        windows: (centre, width) HU windows, one output channel each.
        skull_strip: zero every channel outside the intracranial mask.
        margin_mm: margin around the head's bounding box for the crop box.

    Returns:
        ``(volume, brain_mask, crop_info)``: float32 [C, n_slices, size, size] in [0, 1], uint8
        [n_slices, size, size], and the :class:`~htct.preprocess.geometry.CropInfo` that repeats
        (:func:`~htct.preprocess.geometry.apply_crop`) or inverts
        (:func:`~htct.preprocess.geometry.uncrop_to_scan`) the crop.
    """
    if hu.ndim != 3:
        raise ValueError(f"expected a 3D volume (i, j, k), got shape {hu.shape}")
    spacing_i, spacing_j, source_thickness = voxel_spacing(affine)
    hu_kij = np.clip(np.ascontiguousarray(hu.transpose(2, 0, 1), dtype=np.float32), *HU_RANGE)
    weights, z_start_src, z_step_src = slice_resampling_matrix(
        hu.shape[2], source_thickness, slice_thickness_mm
    )
    resampled = resample_slices(hu_kij, weights)
    del hu_kij

    factor_i = max(1, int(MASK_GRID_MM / spacing_i))
    factor_j = max(1, int(MASK_GRID_MM / spacing_j))
    coarse = _block_mean(resampled, factor_i, factor_j)
    coarse_spacing = (spacing_i * factor_i, spacing_j * factor_j)
    mask_coarse = intracranial_mask(coarse, *coarse_spacing)
    brain_area = mask_coarse.sum(axis=(1, 2)) * coarse_spacing[0] * coarse_spacing[1]
    z_first, pad_before, pad_after = choose_slab(brain_area, n_slices)
    slab_range = slice(max(z_first, 0), max(z_first + n_slices, 0))

    head = head_mask(coarse[slab_range], *coarse_spacing)
    box, box_source = square_box(head, *coarse_spacing, margin_mm), "head"
    if box is None:  # nothing denser than air: keep the whole field of view
        side = max(coarse.shape[1] * coarse_spacing[0], coarse.shape[2] * coarse_spacing[1])
        box, box_source = ((coarse.shape[1] - 1) / 2.0, (coarse.shape[2] - 1) / 2.0, side), "image"
    centre_i_c, centre_j_c, side_mm = box
    # Coarse pixel w covers source pixels [w * f, w * f + f - 1]: its centre is at w * f + (f - 1) / 2.
    centre_i = centre_i_c * factor_i + (factor_i - 1) / 2.0
    centre_j = centre_j_c * factor_j + (factor_j - 1) / 2.0

    brain_slices = brain_area >= MIN_BRAIN_AREA_MM2
    crop = CropInfo(
        source_shape_i=int(hu.shape[0]),
        source_shape_j=int(hu.shape[1]),
        source_shape_k=int(hu.shape[2]),
        spacing_i_mm=spacing_i,
        spacing_j_mm=spacing_j,
        source_thickness_mm=source_thickness,
        slice_thickness_mm=float(slice_thickness_mm),
        n_resampled=int(resampled.shape[0]),
        z_start_src=z_start_src,
        z_step_src=z_step_src,
        n_slices=int(n_slices),
        z_first=int(z_first),
        n_pad_before=int(pad_before),
        n_pad_after=int(pad_after),
        n_brain_slices=int(brain_slices[slab_range].sum()),
        n_brain_slices_scan=int(brain_slices.sum()),
        size=int(size),
        box_centre_i=float(centre_i),
        box_centre_j=float(centre_j),
        box_side_mm=float(side_mm),
        box_source=box_source,
    )

    slab = take_slab(resampled, z_first, n_slices, AIR_HU)
    del resampled
    hu_out = resample_plane(slab, centre_i, centre_j, crop.step_i, crop.step_j, size, AIR_HU)
    del slab
    volume = apply_windows(hu_out, windows)
    del hu_out

    mask_slab = take_slab(mask_coarse.astype(np.float32), z_first, n_slices, 0.0)
    mask_out = resample_plane(
        mask_slab, centre_i_c, centre_j_c, crop.step_i / factor_i, crop.step_j / factor_j, size, 0.0
    )
    brain_mask = (mask_out >= 0.5).astype(np.uint8)
    if skull_strip:
        volume *= brain_mask[None]
    return volume, brain_mask, crop
