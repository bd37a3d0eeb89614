"""Intracranial (brain) mask of a head CT by HU thresholds and morphology (Muschelli et al. 2015 style).

Used three ways: to choose the slab of slices that covers the brain, to centre the in-plane crop
box, and for optional skull stripping. Muschelli J. et al., "Validated automatic brain extraction of
head CT images", NeuroImage 2015;114:379-385, threshold the brain at 0-100 HU and clean up with
morphology; this module follows that threshold-and-morphology recipe (without BET):

1. brain-range voxels: ``lower_hu <= HU <= upper_hu`` (0-100 HU: grey/white matter, CSF, blood);
2. in-plane erosion by a disk of ``erosion_mm``, so the brain detaches from scalp, muscle and
   orbits that touch it through foramina or the thin skull base (slices are thick, so the
   morphology is 2D per slice and the 3D connectivity comes from labelling);
3. the 3D connected component that lies most inside the skull (bone ``>= bone_hu`` with its
   holes filled per slice), or the largest one when no slice has a closed skull ring;
4. in-plane dilation by the same disk, kept within the brain range, then holes filled per slice
   (ventricles and dark lesions that fall below ``lower_hu`` stay inside the mask).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BRAIN_HU = (0.0, 100.0)
BONE_HU = 300.0
EROSION_MM = 4.0
TISSUE_HU = -300.0

# Structuring elements with no extent along the slice axis: per-slice 2D operations in one call.
_PLANE_CROSS = np.zeros((3, 3, 3), dtype=bool)
_PLANE_CROSS[1] = ndimage.generate_binary_structure(2, 1)


def _disk(radius_i: float, radius_j: float) -> np.ndarray:
    """Elliptical (disk in mm) in-plane structuring element, shape (1, 2ri+1, 2rj+1)."""
    ri, rj = max(1, int(round(radius_i))), max(1, int(round(radius_j)))
    di, dj = np.ogrid[-ri : ri + 1, -rj : rj + 1]
    return ((di / (radius_i + 0.5)) ** 2 + (dj / (radius_j + 0.5)) ** 2 <= 1.0)[None]


def intracranial_mask(
    hu: np.ndarray,
    spacing_i_mm: float,
    spacing_j_mm: float,
    brain_hu: tuple[float, float] = BRAIN_HU,
    bone_hu: float = BONE_HU,
    erosion_mm: float = EROSION_MM,
) -> np.ndarray:
    """Intracranial soft-tissue mask of a (slice, i, j) HU volume.

    Args:
        hu: HU volume [Z, I, J] (slice axis first).
        spacing_i_mm: pixel spacing along i of this grid.
        spacing_j_mm: pixel spacing along j.
        brain_hu: HU range of intracranial soft tissue.
        bone_hu: HU above which a voxel counts as bone (skull ring for step 3).
        erosion_mm: radius of the in-plane erosion/dilation disk.

    Returns:
        Boolean mask [Z, I, J]; all False when no brain-range tissue is found.
    """
    soft = (hu >= brain_hu[0]) & (hu <= brain_hu[1])
    disk = _disk(erosion_mm / spacing_i_mm, erosion_mm / spacing_j_mm)
    core = ndimage.binary_erosion(soft, structure=disk)
    labels, n_labels = ndimage.label(core)
    if n_labels == 0:
        return np.zeros(hu.shape, dtype=bool)
    component_ids = np.arange(1, n_labels + 1)
    inside_skull = ndimage.binary_fill_holes(hu >= bone_hu, structure=_PLANE_CROSS)
    score = ndimage.sum_labels(inside_skull, labels, component_ids)
    if score.max() <= 0:
        score = ndimage.sum_labels(core, labels, component_ids)
    brain = labels == component_ids[np.argmax(score)]
    brain = ndimage.binary_dilation(brain, structure=disk) & soft
    return ndimage.binary_fill_holes(brain, structure=_PLANE_CROSS)


def head_mask(
    hu: np.ndarray,
    spacing_i_mm: float,
    spacing_j_mm: float,
    tissue_hu: float = TISSUE_HU,
    opening_mm: float = EROSION_MM,
    bone_hu: float = BONE_HU,
) -> np.ndarray:
    """The head: the largest 3D connected piece of tissue and skull interior after an in-plane opening.

    Tissue is HU > ``tissue_hu``; the skull interior is the bone (``>= bone_hu``) with its holes
    filled per slice. The opening by a disk of ``opening_mm`` cuts off thin structures touching the
    head (table top, head holder, cables; foam pads are below ``tissue_hu`` and never join). On its
    own it would also cut a thin skull into pieces or away (a dry-skull phantom, whose interior is
    air: the largest surviving piece was an insert, and the crop lost 12% of the skull); with its
    interior added, a skull ring closed in a slice is a solid disk that the opening keeps whole.
    A table or a holder is not a closed ring of bone and gains nothing. In a patient the interior is
    brain, already tissue, so only air cells and sinuses are added.

    Args:
        hu: HU volume [Z, I, J] (slice axis first).
        spacing_i_mm: pixel spacing along i of this grid.
        spacing_j_mm: pixel spacing along j.
        tissue_hu: HU above which a voxel is tissue (or bone, plastic), not air or foam.
        opening_mm: radius of the in-plane opening disk.
        bone_hu: HU from which a voxel is bone (for the skull interior).

    Returns:
        Boolean mask [Z, I, J]; all False when there is no tissue.
    """
    disk = _disk(opening_mm / spacing_i_mm, opening_mm / spacing_j_mm)
    skull_interior = ndimage.binary_fill_holes(hu >= bone_hu, structure=_PLANE_CROSS)
    head = ndimage.binary_opening((hu > tissue_hu) | skull_interior, structure=disk)
    labels, n_labels = ndimage.label(head)
    if n_labels == 0:
        return head
    sizes = ndimage.sum_labels(head, labels, np.arange(1, n_labels + 1))
    return labels == 1 + int(np.argmax(sizes))
