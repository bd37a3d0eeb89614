"""Crop and preprocess converted CT scans into model-ready arrays (see docs/preprocessing.md).

Per scan (:func:`preprocess_volume`): slices resampled to 5 mm, the 28-slice slab with the most
intracranial tissue, a square box around the head resized in-plane, HU windows as channels,
optional skull stripping. :func:`build_arrays` runs it over ``scans.tsv`` (or a shard of its patients, joined by
:func:`gather_arrays`); :func:`uncrop_to_scan`
maps a map in the crop (e.g. an attention heatmap) back onto the scan's voxel grid.
"""

from htct.preprocess.arrays import (
    ArrayOutputs,
    build_arrays,
    build_arrays_like,
    build_lesion_masks,
    gather_arrays,
    read_scans,
    skull_strip_arrays,
)
from htct.preprocess.brain import intracranial_mask
from htct.preprocess.geometry import (
    CropInfo,
    apply_crop,
    choose_slab,
    resample_slices,
    slice_resampling_matrix,
    uncrop_to_scan,
    voxel_spacing,
)
from htct.preprocess.volume import (
    BONE_WINDOW,
    BRAIN_WINDOW,
    SUBDURAL_WINDOW,
    apply_windows,
    preprocess_volume,
)

__all__ = [
    "ArrayOutputs",
    "gather_arrays",
    "skull_strip_arrays",
    "BONE_WINDOW",
    "BRAIN_WINDOW",
    "SUBDURAL_WINDOW",
    "CropInfo",
    "apply_crop",
    "apply_windows",
    "build_arrays",
    "build_arrays_like",
    "build_lesion_masks",
    "choose_slab",
    "intracranial_mask",
    "preprocess_volume",
    "read_scans",
    "resample_slices",
    "slice_resampling_matrix",
    "uncrop_to_scan",
    "voxel_spacing",
]
