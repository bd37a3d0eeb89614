"""Analytic head phantom in patient coordinates (mm): HU at any point, so any grid images it.

The head is described in a head frame (LPS axes: x to the patient's left, y posterior, z superior,
origin at the centre of the brain); a scan places the head in the scanner with a translation and a
small rotation (:class:`HeadPose`). Tissues, from outside in (HU means; the noise is added later):

- air -1000; scalp 5 mm, +40; skull (outer/inner tables +1400, diploe +750), 6-8 mm at the vertex,
  4 mm thicker towards the base; below the brain a skull-base region mixing bone (+900), soft tissue
  (+35) and sinus air (-900);
- subarachnoid CSF (+6) 2 mm around the brain, sulci (CSF lines following a smooth random gyral
  field, wider with atrophy), interhemispheric fissure;
- cortex ribbon (grey matter +38, ~3 mm, following the sulci), white matter +28, basal ganglia and
  thalami +36, lateral / third / fourth ventricles +5;
- middle cerebral arteries (M1 segments, ~3 mm): +45, or +75 on the infarct side when the
  hyperdense artery sign is present;
- leukoaraiosis: periventricular white matter 3 HU lower per grade, patchy;
- the infarct: an ellipsoid (volume as sampled) in the lateral MCA territory of one hemisphere,
  parenchyma inside it lowered by the scan's HU drop; the lesion mask is that ellipsoid intersected
  with parenchyma (not CSF).

Everything is vectorised numpy on float32; a volume is rendered slab by slab to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from htct.synth.geometry import SeriesGeometry

HU_AIR = -1000.0
HU_SCALP = 40.0
HU_BONE_TABLE = 1400.0
HU_BONE_DIPLOE = 750.0
HU_BASE_BONE = 900.0
HU_BASE_SOFT = 35.0
HU_SINUS_AIR = -900.0
HU_CSF = 6.0
HU_VENTRICLE = 5.0
HU_GREY = 38.0
HU_WHITE = 28.0
HU_DEEP_GREY = 36.0
HU_CEREBELLUM = 35.0
HU_ARTERY = 45.0
HU_HYPERDENSE_ARTERY = 75.0
LEUKOARAIOSIS_HU_PER_GRADE = 3.0

SCALP_MM = 5.0
CSF_MM = 2.0
CORTEX_MM = 3.0
ARTERY_RADIUS_MM = 1.6
# Below this fraction of the inferior brain semi-axis the skull and scalp keep the cross-section
# they have there (a neck-like cylinder), so slices below the brain still show a head.
OUTER_CLAMP_FRACTION = 0.6


@dataclass(frozen=True)
class HeadAnatomy:
    """One patient's head, fixed across their scans (all lengths in mm, head frame).

    Attributes:
        brain_semi_axes: (a, b, c): left-right, antero-posterior and superior semi-axes.
        inferior_semi_axis: the brain's inferior semi-axis (flatter base than top).
        skull_thickness_mm: skull thickness at the vertex.
        ventricle_scale: size factor of the ventricles (atrophy; independent of age here).
        sulcal_width: half-width of the sulci in gyral-field units (0.03-0.08).
        gyral_wavevectors: [4, 3] wavevectors (rad/mm) of the gyral field.
        gyral_phases: [4] phases of the gyral field.
        base_wavevectors: [4, 3] wavevectors of the skull-base texture.
        base_phases: [4] phases of the skull-base texture.
        lesion_centre: infarct ellipsoid centre (head frame).
        lesion_semi_axes: infarct ellipsoid semi-axes.
        lesion_side: +1 infarct in the left hemisphere (+x), -1 right.
        hyperdense_artery: hyperdense MCA sign on the infarct side.
        leukoaraiosis: grade 0-3.
    """

    brain_semi_axes: tuple[float, float, float]
    inferior_semi_axis: float
    skull_thickness_mm: float
    ventricle_scale: float
    sulcal_width: float
    gyral_wavevectors: np.ndarray
    gyral_phases: np.ndarray
    base_wavevectors: np.ndarray
    base_phases: np.ndarray
    lesion_centre: tuple[float, float, float]
    lesion_semi_axes: tuple[float, float, float]
    lesion_side: int
    hyperdense_artery: bool
    leukoaraiosis: int


@dataclass(frozen=True)
class HeadPose:
    """Where the head lies in the scanner for one scan.

    Attributes:
        centre_lps: world (LPS, mm) position of the head-frame origin (brain centre).
        rotation: 3x3 matrix whose columns are the head axes in world coordinates.
    """

    centre_lps: tuple[float, float, float]
    rotation: np.ndarray


def rotation_matrix(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Head rotation: yaw about z (superior), pitch about x (left-right), roll about y."""
    yaw, pitch, roll = np.deg2rad([yaw_deg, pitch_deg, roll_deg])
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    ry = np.array([[np.cos(roll), 0, np.sin(roll)], [0, 1, 0], [-np.sin(roll), 0, np.cos(roll)]])
    return rz @ rx @ ry


def _texture(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, wavevectors: np.ndarray, phases: np.ndarray
) -> np.ndarray:
    """Smooth random field in [-1, 1]: mean of a few plane waves."""
    field = np.zeros_like(x)
    for (kx, ky, kz), phase in zip(wavevectors, phases, strict=True):
        field += np.cos(np.float32(kx) * x + np.float32(ky) * y + np.float32(kz) * z + np.float32(phase))
    return field / np.float32(len(phases))


def _ellipsoid_distance(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, a: float, b: float, c_sup: float, c_inf: float
) -> np.ndarray:
    """Approximate signed distance (mm) to an ellipsoid surface, first order in (rho - 1).

    Exact enough near the surface, where the layer thresholds (cortex, CSF, skull, scalp) are used,
    and monotone along rays from the centre, which is all the deeper layers need.
    """
    c = np.where(z > 0, np.float32(c_sup), np.float32(c_inf))
    xa, yb, zc = x / np.float32(a), y / np.float32(b), z / c
    rho = np.sqrt(xa * xa + yb * yb + zc * zc)
    gx, gy, gz = xa / np.float32(a), yb / np.float32(b), zc / c
    gradient = np.sqrt(gx * gx + gy * gy + gz * gz)
    return (rho - 1.0) * rho / np.maximum(gradient, np.float32(1e-6))


def _inside_ellipsoid(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    centre: tuple[float, float, float],
    semi: tuple[float, float, float],
) -> np.ndarray:
    dx = (x - np.float32(centre[0])) / np.float32(semi[0])
    dy = (y - np.float32(centre[1])) / np.float32(semi[1])
    dz = (z - np.float32(centre[2])) / np.float32(semi[2])
    return dx * dx + dy * dy + dz * dz <= 1.0


def head_hu(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, anatomy: HeadAnatomy, lesion_hu_drop: float
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free HU and infarct membership at head-frame points.

    Args:
        x, y, z: head-frame coordinates (mm), float32 arrays of one shape.
        anatomy: the patient's head.
        lesion_hu_drop: hypodensity of the infarct on this scan (HU, >= 0).

    Returns:
        (hu, lesion): float32 HU and boolean infarct mask, shaped like ``x``.
    """
    a, b, c = anatomy.brain_semi_axes
    c_inf = anatomy.inferior_semi_axis
    z_outer = np.maximum(z, np.float32(-OUTER_CLAMP_FRACTION * c_inf))
    d_outer = _ellipsoid_distance(x, y, z_outer, a, b, c, c_inf)
    # Most of the field of view is air: image only the points inside the scalp.
    head = d_outer < CSF_MM + anatomy.skull_thickness_mm + 4.0 + SCALP_MM
    hu = np.full(x.shape, HU_AIR, dtype=np.float32)
    lesion = np.zeros(x.shape, dtype=bool)
    if head.any():
        hu[head], lesion[head] = _head_interior(
            x[head], y[head], z[head], d_outer[head], anatomy, lesion_hu_drop
        )
    return hu, lesion


def _head_interior(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    d_outer: np.ndarray,
    anatomy: HeadAnatomy,
    lesion_hu_drop: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`head_hu` on flat arrays of points inside the scalp's outer bound."""
    a, b, c = anatomy.brain_semi_axes
    c_inf = anatomy.inferior_semi_axis
    d_cerebrum = _ellipsoid_distance(x, y, z, a, b, c, c_inf)
    # Cerebellum: a separate ellipsoid in the posterior fossa, below the occipital lobes.
    cerebellum_centre = (0.0, 0.42 * b, -0.78 * c_inf)
    cerebellum_semi = (0.72 * a, 0.36 * b, 0.34 * c_inf)
    d_cerebellum = _ellipsoid_distance(
        x - np.float32(cerebellum_centre[0]),
        y - np.float32(cerebellum_centre[1]),
        z - np.float32(cerebellum_centre[2]),
        *cerebellum_semi,
        cerebellum_semi[2],
    )
    d_brain = np.minimum(d_cerebrum, d_cerebellum)

    skull_mm = anatomy.skull_thickness_mm + 4.0 * np.clip(-z / np.float32(c_inf), 0.0, 1.0)
    bone_depth = d_outer - np.float32(CSF_MM)  # 0 at the inner table
    hu = np.full(x.shape, HU_AIR, dtype=np.float32)
    hu[d_outer < CSF_MM + skull_mm + SCALP_MM] = HU_SCALP
    in_bone = (bone_depth >= 0) & (bone_depth < skull_mm)
    diploe = np.abs(bone_depth - skull_mm / 2) < 0.2 * skull_mm
    hu[in_bone] = np.where(diploe[in_bone], HU_BONE_DIPLOE, HU_BONE_TABLE)

    inside_skull = d_outer < CSF_MM
    base = inside_skull & (d_brain >= CSF_MM)
    if base.any():
        texture = _texture(x[base], y[base], z[base], anatomy.base_wavevectors, anatomy.base_phases)
        # Sinus air only anteriorly, fading out over ~20 mm behind a quarter of the brain's length.
        behind = np.maximum(y[base] + np.float32(0.25 * b), 0.0)
        sinus = texture + np.float32(0.03) * behind < -0.25
        hu[base] = np.where(texture > 0.3, HU_BASE_BONE, np.where(sinus, HU_SINUS_AIR, HU_BASE_SOFT))
    hu[inside_skull & (d_brain < CSF_MM)] = HU_CSF

    brain = d_brain < 0
    lesion = np.zeros(x.shape, dtype=bool)
    if not brain.any():
        return hu, lesion
    bx, by, bz, bd = x[brain], y[brain], z[brain], d_brain[brain]
    gyral = np.abs(_texture(bx, by, bz, anatomy.gyral_wavevectors, anatomy.gyral_phases))
    tissue = np.full(bx.shape, HU_WHITE, dtype=np.float32)
    # |gyral| / 0.085 is roughly the distance (mm) to a sulcus: cortex lines the sulci to ~14 mm depth.
    grey = (bd > -CORTEX_MM) | ((gyral < anatomy.sulcal_width + 0.25) & (bd > -14.0))
    tissue[grey] = HU_GREY
    cerebellum = d_cerebellum[brain] < d_cerebrum[brain]
    tissue[cerebellum] = HU_CEREBELLUM

    vs = anatomy.ventricle_scale
    deep_grey = np.zeros(bx.shape, dtype=bool)
    for side in (-1.0, 1.0):
        deep_grey |= _inside_ellipsoid(bx, by, bz, (side * 21.0, -6.0, 0.0), (7.0, 14.0, 10.0))  # lentiform
        deep_grey |= _inside_ellipsoid(bx, by, bz, (side * 10.0, 14.0, -2.0), (7.0, 11.0, 9.0))  # thalamus
    tissue[deep_grey] = HU_DEEP_GREY

    # Leukoaraiosis: periventricular white matter, patchy, within ~9 mm of the ventricles.
    periventricular = np.zeros(bx.shape, dtype=bool)
    ventricle = np.zeros(bx.shape, dtype=bool)
    for side in (-1.0, 1.0):
        centre = (side * (3.0 + 6.0 * vs), -4.0, 0.2 * c)
        ventricle |= _inside_ellipsoid(bx, by, bz, centre, (6.0 * vs, 34.0, 12.0 * vs))
        periventricular |= _inside_ellipsoid(bx, by, bz, centre, (6.0 * vs + 10.0, 44.0, 12.0 * vs + 10.0))
    ventricle |= _inside_ellipsoid(bx, by, bz, (0.0, 5.0, -0.05 * c), (2.0 * vs, 12.0, 8.0))
    ventricle |= _inside_ellipsoid(bx, by, bz, (0.0, 0.3 * b, -0.7 * c_inf), (4.0, 3.0, 6.0))
    if anatomy.leukoaraiosis > 0:
        white = periventricular & ~grey & ~deep_grey & ~ventricle
        patchy = 0.5 + gyral[white]  # gyral in [0, 1]: 0.5-1.5 x the grade's drop
        tissue[white] -= np.float32(LEUKOARAIOSIS_HU_PER_GRADE * anatomy.leukoaraiosis) * patchy

    csf = ventricle.copy()
    csf |= (gyral < anatomy.sulcal_width) & (bd > -12.0) & ~cerebellum
    csf |= (np.abs(bx) < 0.6 + 0.6 * vs) & ((bz > 0.35 * c) | (np.abs(by) > 0.45 * b))
    in_lesion = _inside_ellipsoid(bx, by, bz, anatomy.lesion_centre, anatomy.lesion_semi_axes) & ~csf
    tissue[in_lesion] -= np.float32(lesion_hu_drop)
    tissue[csf & ~ventricle] = HU_CSF
    tissue[ventricle] = HU_VENTRICLE

    # M1 segments of both middle cerebral arteries, running laterally from the circle of Willis.
    ax = np.abs(bx)
    along = np.clip((ax - 3.0) / 37.0, 0.0, 1.0)
    centre_y = -12.0 - 3.0 * along
    centre_z = -0.45 * c_inf + 0.05 * c_inf * along
    artery = ((by - centre_y) ** 2 + (bz - centre_z) ** 2 < ARTERY_RADIUS_MM**2) & (ax >= 3.0) & (ax <= 40.0)
    hyperdense = (
        artery & (np.sign(bx) == anatomy.lesion_side) if anatomy.hyperdense_artery else np.zeros_like(artery)
    )
    tissue[artery] = HU_ARTERY
    tissue[hyperdense] = HU_HYPERDENSE_ARTERY

    hu[brain] = tissue
    lesion[brain] = in_lesion
    return hu, lesion


def render_series(
    geometry: SeriesGeometry,
    anatomy: HeadAnatomy,
    pose: HeadPose,
    lesion_hu_drop: float,
    noise_sd_hu: float,
    rng: np.random.Generator,
    samples_per_slice: int = 3,
    slab_slices: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Image one axial series of the phantom.

    Each slice averages ``samples_per_slice`` planes spread over its thickness (partial volume), then
    Gaussian noise smoothed in-plane (sigma 0.7 px, like a soft reconstruction kernel) is added.

    Args:
        geometry: the series geometry (headers).
        anatomy: the patient's head.
        pose: the head's position in the scanner for this scan.
        lesion_hu_drop: the infarct's hypodensity on this scan (HU).
        noise_sd_hu: standard deviation of the final (smoothed) noise.
        rng: random generator for the noise.
        samples_per_slice: planes averaged per slice (odd: the middle one decides the mask).
        slab_slices: slices rendered at once (memory bound).

    Returns:
        (hu, lesion_mask): int16 HU and uint8 infarct mask, both [n_slices, rows, columns] in k order
        (ascending along the slice normal), rows and columns as in the DICOM pixel array.
    """
    offsets = ((np.arange(samples_per_slice) + 0.5) / samples_per_slice - 0.5) * geometry.slice_spacing_mm
    middle = samples_per_slice // 2
    rotation = np.asarray(pose.rotation, dtype=np.float32)
    centre = np.asarray(pose.centre_lps, dtype=np.float32)
    shape = (geometry.n_slices, geometry.rows, geometry.columns)
    hu = np.empty(shape, dtype=np.float32)
    mask = np.empty(shape, dtype=np.uint8)
    affine = geometry.affine_lps().astype(np.float32)
    columns = np.arange(geometry.columns, dtype=np.float32)[None, :, None] * affine[:3, 0]
    rows = np.arange(geometry.rows, dtype=np.float32)[:, None, None] * affine[:3, 1]
    in_plane = rows + columns + affine[:3, 3] - centre  # [rows, cols, 3]
    normal = affine[:3, 2] / np.float32(geometry.slice_spacing_mm)
    for start in range(0, geometry.n_slices, slab_slices):
        stop = min(start + slab_slices, geometry.n_slices)
        depth = np.arange(start, stop, dtype=np.float32)[None, :] * np.float32(geometry.slice_spacing_mm)
        depth = depth + offsets.astype(np.float32)[:, None]  # [samples, slab]
        world = in_plane[None, None] + depth[:, :, None, None, None] * normal
        head = world @ rotation  # world -> head frame: R^T (p - centre), as row vectors
        values, lesion = head_hu(head[..., 0], head[..., 1], head[..., 2], anatomy, lesion_hu_drop)
        hu[start:stop] = values.mean(axis=0)
        mask[start:stop] = lesion[middle]
    smoothing = 0.7
    # Variance of white noise after a 2D Gaussian of sigma s (pixels) shrinks by 1 / (4 pi s^2).
    raw_sd = noise_sd_hu * 2.0 * smoothing * np.sqrt(np.pi)
    noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(raw_sd)
    noise = gaussian_filter(noise, sigma=(0, smoothing, smoothing), mode="wrap")
    hu += noise
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), mask


def render_lateral_scout(
    anatomy: HeadAnatomy,
    pose: HeadPose,
    top_left_lps: tuple[float, float, float],
    size: int,
    spacing_mm: float,
) -> np.ndarray:
    """A lateral localizer: attenuation integrated along x through the phantom (projection image).

    Args:
        anatomy: the patient's head.
        pose: the head's position for this scan.
        top_left_lps: world position of the first pixel (anterior-superior corner), in the x = 0 plane.
        size: rows = columns of the image.
        spacing_mm: pixel spacing.

    Returns:
        int16 image [rows (inferior), columns (posterior)] with values 0..~3000 (not HU).
    """
    n_rays = 48
    xs = np.linspace(-110.0, 110.0, n_rays, dtype=np.float32)
    ys = top_left_lps[1] + spacing_mm * np.arange(size, dtype=np.float32)
    zs = top_left_lps[2] - spacing_mm * np.arange(size, dtype=np.float32)
    world = np.stack(np.meshgrid(xs, zs, ys, indexing="ij"), axis=-1)[
        ..., [0, 2, 1]
    ]  # [x, row(z), col(y), 3]
    head = (world - np.asarray(pose.centre_lps, dtype=np.float32)) @ np.asarray(
        pose.rotation, dtype=np.float32
    )
    hu, _ = head_hu(head[..., 0], head[..., 1], head[..., 2], anatomy, 0.0)
    attenuation = np.clip((hu + 1000.0) / 1000.0, 0.0, None).sum(axis=0) * (220.0 / n_rays)
    # Water-equivalent path length (mm) to grey level: ~200 mm through the head reads ~2400.
    return np.rint(np.clip(12.0 * attenuation, 0, 4000)).astype(np.int16)
