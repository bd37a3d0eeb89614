"""Tests of htct.preprocess on small head phantoms (air, scalp, skull, brain ellipsoids) written as NIfTI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from htct.errors import HTCTInputError
from htct.preprocess import (
    CropInfo,
    apply_windows,
    build_arrays,
    build_lesion_masks,
    intracranial_mask,
    preprocess_volume,
    resample_slices,
    slice_resampling_matrix,
    uncrop_to_scan,
)
from htct.preprocess.brain import head_mask

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

BRAIN_HU, SCALP_HU, BONE_HU, LESION_HU = 30.0, 60.0, 1000.0, 10.0
BRAIN_AXES_MM = (60.0, 72.0, 55.0)


def head_phantom(
    n_slices: int = 36,
    thickness_mm: float = 5.0,
    brain_z_mm: float = 90.0,
    matrix: int = 64,
    pixel_mm: float = 3.0,
    centre_mm: tuple[float, float] = (0.0, 0.0),
    lesion: tuple[float, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Head phantom in NIfTI order (i, j, k): brain ellipsoid in a 6 mm skull and 5 mm scalp.

    The brain centre is at ``centre_mm`` in-plane (from the image centre) and ``brain_z_mm`` from the
    centre of slice 0. ``lesion`` is the (x, y, z) mm position, relative to the brain centre, of a
    12 mm-radius hypodense sphere. Returns the HU volume, the affine and the truth masks.
    """
    offsets = (np.arange(matrix) - (matrix - 1) / 2.0) * pixel_mm
    x, y, z = np.meshgrid(
        offsets - centre_mm[0],
        offsets - centre_mm[1],
        np.arange(n_slices) * thickness_mm - brain_z_mm,
        indexing="ij",
    )
    a, b, c = BRAIN_AXES_MM

    def inside(grow_mm: float) -> np.ndarray:
        return (x / (a + grow_mm)) ** 2 + (y / (b + grow_mm)) ** 2 + (z / (c + grow_mm)) ** 2 <= 1.0

    hu = np.full(x.shape, -1000.0, dtype=np.float32)
    hu[inside(11.0)] = SCALP_HU
    hu[inside(6.0)] = BONE_HU
    brain = inside(0.0)
    hu[brain] = BRAIN_HU
    truth = {"brain": brain, "bone": hu == BONE_HU, "scalp": hu == SCALP_HU}
    if lesion is not None:
        lesion_mask = ((x - lesion[0]) ** 2 + (y - lesion[1]) ** 2 + (z - lesion[2]) ** 2 <= 12.0**2) & brain
        hu[lesion_mask] = LESION_HU
        truth["lesion"] = lesion_mask
    affine = np.diag([pixel_mm, pixel_mm, thickness_mm, 1.0])
    affine[:3, 3] = (-100.0, -120.0, -50.0)
    return hu, affine, truth


def write_cohort(tmp_path: Path, phantoms: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write phantoms as int16 NIfTI and a scans.tsv listing them (relative paths, like the converter)."""
    (tmp_path / "nifti").mkdir()
    rows = []
    for n, (scan_id, (hu, affine)) in enumerate(phantoms.items()):
        nib.save(nib.Nifti1Image(hu.astype(np.int16), affine), tmp_path / "nifti" / f"{scan_id}.nii.gz")
        rows.append(
            {
                "scan_id": scan_id,
                "patient_id": scan_id.split("_")[0],
                "label": n % 2,
                "study_rank": 1,
                "nifti": f"nifti/{scan_id}.nii.gz",
                "n_slices": hu.shape[2],
                "slice_thickness_mm": float(np.linalg.norm(affine[:3, 2])),
            }
        )
    scans_tsv = tmp_path / "scans.tsv"
    pd.DataFrame(rows).to_csv(scans_tsv, sep="\t", index=False)
    return scans_tsv


def test_windowing_exact_on_known_hu() -> None:
    hu = np.array([-1000.0, -2.0, 0.0, 20.0, 40.0, 60.0, 80.0, 81.0, 1500.0])
    brain, bone = apply_windows(hu, [(40, 80), (600, 2800)])
    np.testing.assert_allclose(brain, [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1], atol=1e-7)
    np.testing.assert_allclose(bone, (np.clip(hu, -800, 2000) + 800) / 2800, atol=1e-7)
    with pytest.raises(ValueError, match="width"):
        apply_windows(hu, [(40, 0)])


def test_thin_slices_averaged_in_pairs_and_linear_profile_kept() -> None:
    # 2.5 mm -> 5 mm: each output slice is the mean of an aligned pair.
    profile = np.array([0, 10, 20, 40, 100, 100, 0, -50], dtype=float)
    volume = np.broadcast_to(profile[:, None, None], (8, 3, 2))
    weights, z_start, z_step = slice_resampling_matrix(8, 2.5, 5.0)
    resampled = resample_slices(volume, weights)
    np.testing.assert_allclose(resampled[:, 1, 1], [5, 30, 100, -25])
    assert (z_start, z_step) == (0.5, 2.0)  # output slice m lies between source slices 2m and 2m + 1
    # Non-integer ratio (3 mm -> 5 mm): slab averaging keeps the z-integral (HU x mm) of the profile,
    # and a flat profile stays flat.
    weights, z_start, z_step = slice_resampling_matrix(20, 3.0, 5.0)
    ramp = 7.0 + 2.0 * np.arange(20)
    assert weights.shape == (12, 20) and z_step == pytest.approx(5 / 3)
    assert (weights @ ramp).sum() * 5.0 == pytest.approx(ramp.sum() * 3.0)
    np.testing.assert_allclose(weights @ np.full(20, 42.0), 42.0)
    np.testing.assert_allclose(weights[1, :4], [0, 1 / 5, 3 / 5, 1 / 5])  # 5-10 mm: 1 + 3 + 1 mm
    # Thicker source (10 mm -> 5 mm): linear interpolation at the output centres, a line stays a line.
    weights, z_start, z_step = slice_resampling_matrix(10, 10.0, 5.0)
    centres = z_start + z_step * np.arange(weights.shape[0])
    inner = (centres >= 0) & (centres <= 9)  # beyond the first/last source centre values are held
    np.testing.assert_allclose((weights @ ramp[:10])[inner], 7.0 + 2.0 * centres[inner], atol=1e-9)
    assert weights.shape[0] == 20 and z_start == -0.25
    np.testing.assert_array_equal(slice_resampling_matrix(5, 5.0, 5.0)[0], np.eye(5))


def test_intracranial_mask_finds_brain_not_scalp_or_skull() -> None:
    hu, _, truth = head_phantom(lesion=(20.0, 0.0, 0.0))
    mask = intracranial_mask(hu.transpose(2, 0, 1), 3.0, 3.0).transpose(1, 2, 0)
    dice = 2 * (mask & truth["brain"]).sum() / (mask.sum() + truth["brain"].sum())
    assert dice > 0.95
    assert (mask & truth["bone"]).sum() == 0
    assert (mask & truth["scalp"]).sum() == 0
    assert mask[truth["lesion"]].all()  # a dark lesion stays inside


@pytest.mark.parametrize("thickness_mm", [5.0, 2.5])
def test_slab_covers_off_centre_brain(thickness_mm: float) -> None:
    # 45 slices of 5 mm (225 mm), brain low in the stack: its 22 slices sit at 5 mm slices 7..28.
    n_source = int(45 * 5.0 / thickness_mm)
    hu, affine, truth = head_phantom(n_slices=n_source, thickness_mm=thickness_mm, brain_z_mm=90.0)
    volume, brain_mask, crop = preprocess_volume(hu, affine, size=32)
    brain_slices_5mm = np.flatnonzero(truth["brain"].any(axis=(0, 1))) * thickness_mm / 5.0
    assert crop.z_first <= brain_slices_5mm.min() and crop.z_first + 27 >= np.floor(brain_slices_5mm.max())
    assert crop.n_brain_slices == crop.n_brain_slices_scan >= 20
    assert crop.n_resampled == 45 and crop.n_pad_before == crop.n_pad_after == 0
    # Ties (every window holding the whole brain) resolve to the window centred on the brain.
    brain_centre = 90.0 / 5.0
    assert abs(crop.z_first + 13.5 - brain_centre) <= 1.0
    assert brain_mask[0].sum() == 0 and brain_mask[14].sum() > 0


def test_short_scan_padded_with_air_symmetrically() -> None:
    hu, affine, _ = head_phantom(n_slices=21, brain_z_mm=50.0)
    volume, brain_mask, crop = preprocess_volume(hu, affine, size=32, windows=[(40, 80), (600, 2800)])
    assert (crop.z_first, crop.n_pad_before, crop.n_pad_after) == (-3, 3, 4)
    padded = np.r_[0:3, 24:28]
    assert np.all(volume[:, padded] == 0) and np.all(brain_mask[padded] == 0)
    assert volume[0, 3:24].max() > 0 and volume[1, 3:24].max() > 0.5  # the scan itself, with its skull


def test_crop_box_follows_head_position_and_size() -> None:
    centred = preprocess_volume(*head_phantom(matrix=80)[:2], size=48)
    shifted = preprocess_volume(
        *head_phantom(matrix=80, centre_mm=(-21.0, 15.0))[:2], size=48
    )  # whole pixels
    # Same head elsewhere in the field of view: same picture, box moved with it.
    assert shifted[2].box_side_mm == pytest.approx(centred[2].box_side_mm)
    assert shifted[2].box_centre_i - centred[2].box_centre_i == pytest.approx(-21.0 / 3.0)
    assert shifted[2].box_centre_j - centred[2].box_centre_j == pytest.approx(15.0 / 3.0)
    np.testing.assert_allclose(shifted[0], centred[0], atol=1e-5)
    # The head (scalp outline, 166 mm long) spans the frame up to the 5 mm margins.
    assert centred[2].box_side_mm == pytest.approx(2 * (72 + 11) + 2 * 5, abs=4.0)


def dry_skull_phantom(matrix: int = 96, pixel_mm: float = 2.5, n_slices: int = 30) -> dict[str, np.ndarray]:
    """A dry-skull phantom like dcm_qa_ct's Philips one, in NIfTI order (i, j, k), 5 mm slices.

    Air inside a 4 mm skull (an in-plane opening by 4 mm removes it, except a 12 mm thick frontal
    boss that survives as a piece of its own), a 30 HU insert in the back of the skull, and a 15 mm
    table plate 30 mm behind the head (the largest piece that survives the opening).
    """
    offsets = (np.arange(matrix) - (matrix - 1) / 2.0) * pixel_mm
    x, y = np.meshgrid(offsets, offsets, indexing="ij")
    radius = np.sqrt((x / 65.0) ** 2 + (y / 80.0) ** 2)  # 1 on the skull's outer surface
    skull = (radius <= 1.0) & (radius >= 1.0 - 4.0 / 70.0)
    skull |= (radius <= 1.0) & (radius >= 1.0 - 12.0 / 80.0) & (y > 60.0) & (np.abs(x) < 25.0)
    insert = x**2 + (y + 40.0) ** 2 <= 15.0**2
    table = (np.abs(x) <= 110.0) & (y <= -110.0) & (y >= -125.0)
    hu = np.full((matrix, matrix, n_slices), -1000.0, dtype=np.float32)
    head_slices = slice(3, n_slices - 3)
    hu[:, :, head_slices][skull] = 1000.0
    hu[:, :, head_slices][insert] = 30.0
    hu[table] = 200.0
    affine = np.diag([pixel_mm, pixel_mm, 5.0, 1.0])
    in_slab = np.zeros(n_slices, dtype=bool)
    in_slab[head_slices] = True
    return {
        "hu": hu,
        "affine": affine,
        "skull": skull[:, :, None] & in_slab,
        "table": np.broadcast_to(table[:, :, None], hu.shape),
    }


def test_head_mask_keeps_a_skull_that_the_opening_splits() -> None:
    """On a dry skull the opening leaves only an insert, a boss and the table: the head mask and the
    crop box must still hold the whole skull (the largest surviving piece alone is the table; the
    insert alone cut 12% of the real Philips phantom's skull away) and not the table."""
    phantom = dry_skull_phantom()
    hu_zij = phantom["hu"].transpose(2, 0, 1)
    head = head_mask(hu_zij, 2.5, 2.5).transpose(1, 2, 0)
    skull, table = phantom["skull"], phantom["table"]
    assert head[skull].mean() > 0.9  # the skull ring itself, not only its pieces
    assert not (head & table).any()
    _, _, crop = preprocess_volume(phantom["hu"], phantom["affine"], size=32)
    assert crop.box_source == "head"
    i, j = np.nonzero(skull.any(axis=2))
    half = crop.box_side_mm / 2.5 / 2.0
    assert np.all(np.abs(i - crop.box_centre_i) <= half) and np.all(np.abs(j - crop.box_centre_j) <= half)
    assert crop.box_side_mm < 2 * 80 + 2 * 5 + 10  # the skull plus margins: not the table's 220 mm


def test_skull_strip_removes_bone_keeps_brain() -> None:
    hu, affine, _ = head_phantom()
    windows = [(40, 80), (600, 2800)]
    plain, brain_mask, _ = preprocess_volume(hu, affine, size=48, windows=windows)
    stripped, _, _ = preprocess_volume(hu, affine, size=48, windows=windows, skull_strip=True)
    bone = plain[1] > (500 + 800) / 2800  # > 500 HU
    brain = np.abs(plain[0] - (BRAIN_HU + 0) / 80) < 0.01  # pure brain HU after resampling
    scalp = np.abs(plain[0] - (SCALP_HU + 0) / 80) < 0.01
    assert bone.sum() > 500 and brain.sum() > 5000 and scalp.sum() > 100
    assert (stripped[:, bone] > 0).mean() == 0.0
    assert (stripped[:, scalp] > 0).mean() < 0.01
    assert (stripped[0, brain] > 0).mean() > 0.97
    np.testing.assert_array_equal(stripped[0][brain_mask == 1], plain[0][brain_mask == 1])


def test_uncrop_puts_a_crop_blob_back_on_its_scan_voxel() -> None:
    hu, affine, _ = head_phantom(n_slices=60, thickness_mm=2.5, centre_mm=(10.0, -6.0))
    without_dot, _, _ = preprocess_volume(hu, affine, size=40, windows=[(600, 2800)])
    target_ijk = (30, 22, 37)  # a bright dot in the scan, 3 slices long
    hu[target_ijk[0], target_ijk[1], target_ijk[2] - 1 : target_ijk[2] + 2] = 3000.0
    volume, _, crop = preprocess_volume(hu, affine, size=40, windows=[(600, 2800)])
    assert crop.step_i != 1 and crop.z_step_src == 2.0
    # Where the dot landed in the crop ...
    s, p, q = np.unravel_index(np.argmax(volume[0] - without_dot[0]), volume[0].shape)
    heatmap = np.zeros((crop.n_slices, crop.size, crop.size), dtype=np.float32)
    heatmap[s, p, q] = 1.0
    # ... maps back onto the dot's voxel.
    back = uncrop_to_scan(heatmap, crop, hu.shape)
    assert back.shape == hu.shape
    found = np.unravel_index(np.argmax(back), back.shape)
    assert abs(found[0] - target_ijk[0]) <= 1 and abs(found[1] - target_ijk[1]) <= 1
    assert abs(found[2] - target_ijk[2]) <= 1
    # A constant map covers exactly the scan voxels inside the crop box and slab.
    ones = uncrop_to_scan(np.ones_like(heatmap), crop)
    assert ones.max() == 1.0 and ones[target_ijk] == 1.0 and ones[0, 0, 0] == 0.0


def test_build_arrays_and_lesion_masks(tmp_path: Path) -> None:
    lesioned, affine_a, truth_a = head_phantom(lesion=(25.0, 10.0, 5.0))
    thin, affine_b, truth_b = head_phantom(
        n_slices=80, thickness_mm=2.5, brain_z_mm=110.0, lesion=(-20.0, -15.0, -10.0)
    )
    short, affine_c, _ = head_phantom(n_slices=22, brain_z_mm=55.0)
    scans_tsv = write_cohort(
        tmp_path,
        {"P01_scan1": (lesioned, affine_a), "P02_scan1": (thin, affine_b), "P03_scan1": (short, affine_c)},
    )
    masks_dir = tmp_path / "masks"
    masks_dir.mkdir()
    for scan_id, truth, affine in (("P01_scan1", truth_a, affine_a), ("P02_scan1", truth_b, affine_b)):
        nib.save(nib.Nifti1Image(truth["lesion"].astype(np.uint8), affine), masks_dir / f"{scan_id}.nii.gz")

    out = tmp_path / "arrays"
    index = build_arrays(scans_tsv, out, size=40, windows=[(40, 80), (80, 200)], threads=2)
    volumes = np.load(out / "volumes.npy")
    brain_mask = np.load(out / "brain_mask.npy")
    assert volumes.shape == (3, 2, 28, 40, 40) and volumes.dtype == np.float16
    assert brain_mask.shape == (3, 28, 40, 40) and brain_mask.dtype == np.uint8
    assert 0.0 <= volumes.min() and volumes.max() <= 1.0
    written = pd.read_csv(out / "index.tsv", sep="\t", dtype={"scan_id": str, "patient_id": str})
    assert list(written.columns[:9]) == [
        "row", "scan_id", "patient_id", "label", "z_first", "n_pad_before", "n_pad_after", "n_brain_slices",
        "source_thickness_mm",
    ]  # fmt: skip
    assert written["scan_id"].tolist() == ["P01_scan1", "P02_scan1", "P03_scan1"]
    assert written["source_thickness_mm"].tolist() == [5.0, 2.5, 5.0]
    assert (written["n_pad_before"].tolist(), written["n_pad_after"].tolist()) == ([0, 0, 3], [0, 0, 3])
    pd.testing.assert_frame_equal(written, index, check_dtype=False)
    settings = json.loads((out / "preprocess.json").read_text())
    assert settings["windows"] == [[40.0, 80.0], [80.0, 200.0]] and settings["n_scans"] == 3
    assert not list(out.glob(".*tmp"))
    # Processes in parallel write the same rows as one process.
    serial = build_arrays(scans_tsv, tmp_path / "serial", size=40, windows=[(40, 80), (80, 200)], threads=1)
    np.testing.assert_array_equal(np.load(tmp_path / "serial" / "volumes.npy"), volumes)
    pd.testing.assert_frame_equal(serial, index)

    # The lesion mask lands on the hypodensity of the scan.
    lesion_npy = tmp_path / "arrays" / "lesion_mask.npy"
    with pytest.raises(HTCTInputError, match="P03_scan1"):
        build_lesion_masks(out / "index.tsv", scans_tsv, masks_dir, lesion_npy, size=40)
    assert not lesion_npy.exists()
    nib.save(nib.Nifti1Image(np.zeros(short.shape, np.uint8), affine_c), masks_dir / "P03_scan1.nii.gz")
    build_lesion_masks(out / "index.tsv", scans_tsv, masks_dir, lesion_npy, size=40)
    lesion = np.load(lesion_npy)
    assert lesion.shape == (3, 28, 40, 40) and lesion.dtype == np.uint8 and lesion[2].sum() == 0
    for row in (0, 1):
        assert lesion[row].sum() > 20
        brain_window = volumes[row, 0].astype(np.float32)
        hypodense = (brain_window < (20 + 0) / 80) & (brain_mask[row] == 1)  # under 20 HU inside the brain
        assert np.abs(np.argwhere(hypodense).mean(axis=0) - np.argwhere(lesion[row]).mean(axis=0)).max() < 1.0
        assert brain_window[lesion[row] == 1].mean() < (18.0 + 0) / 80
        dice = 2 * (hypodense & (lesion[row] == 1)).sum() / (hypodense.sum() + lesion[row].sum())
        assert dice > 0.8


def test_crop_info_round_trips_through_index_row() -> None:
    _, _, crop = preprocess_volume(*head_phantom(n_slices=30)[:2], size=32)
    row = pd.DataFrame([crop.to_dict()]).astype(str).iloc[0].to_dict()  # as read back from a TSV
    assert CropInfo.from_mapping(row) == crop


def test_missing_nifti_named(tmp_path: Path) -> None:
    scans_tsv = tmp_path / "scans.tsv"
    pd.DataFrame([{"scan_id": "P9_scan1", "patient_id": "P9", "label": 0, "nifti": "nope.nii.gz"}]).to_csv(
        scans_tsv, sep="\t", index=False
    )
    with pytest.raises(HTCTInputError, match="P9_scan1"):
        build_arrays(scans_tsv, tmp_path / "arrays")
    assert not (tmp_path / "arrays" / "volumes.npy").exists()


@pytest.mark.skipif(
    not (SHARED_DATA / "dcm_qa_ct" / "GE").is_dir(), reason="../shared/data/dcm_qa_ct not present"
)
def test_real_head_ct_brain_slab(tmp_path: Path) -> None:
    """The GE head CT of dcm_qa_ct (uneven 2.6 mm slices after dcm2niix's tilt correction)."""
    dcm2niix = pytest.importorskip("dcm2niix")
    subprocess.run(
        [dcm2niix.bin, "-z", "y", "-o", str(tmp_path), "-f", "ge", str(SHARED_DATA / "dcm_qa_ct" / "GE")],
        check=True,
        capture_output=True,
    )
    image = nib.load(tmp_path / "ge_Tilt_Eq_1.nii.gz")
    volume, brain_mask, crop = preprocess_volume(np.asarray(image.dataobj, np.float32), image.affine, size=64)
    assert crop.source_thickness_mm == pytest.approx(2.62, abs=0.01) and crop.n_resampled == 29
    assert crop.n_brain_slices >= 20  # the scan covers skull base to vertex
    # An adult brain: 1.0-1.8 litres of intracranial tissue in the mask.
    voxel_ml = (crop.box_side_mm / crop.size) ** 2 * crop.slice_thickness_mm / 1000.0
    assert 1000 < brain_mask.sum() * voxel_ml < 1800
    assert volume[0][brain_mask == 1].mean() == pytest.approx(0.5, abs=0.15)  # brain ~ 30-45 HU


def test_skull_strip_arrays_equal_a_skull_stripped_preprocessing(tmp_path: Path) -> None:
    """Stripping the full-head arrays gives, to the bit, what preprocessing with skull_strip does."""
    from htct.preprocess import skull_strip_arrays

    lesioned, affine_a, _ = head_phantom(lesion=(25.0, 10.0, 5.0))
    short, affine_c, _ = head_phantom(n_slices=22, brain_z_mm=55.0)
    scans_tsv = write_cohort(tmp_path, {"P01_scan1": (lesioned, affine_a), "P03_scan1": (short, affine_c)})
    windows = [(40, 80), (80, 200)]
    build_arrays(scans_tsv, tmp_path / "full", size=40, windows=windows)
    build_arrays(scans_tsv, tmp_path / "stripped", size=40, windows=windows, skull_strip=True)
    skull_strip_arrays(tmp_path / "full", tmp_path / "derived")
    for name in ("volumes.npy", "brain_mask.npy"):
        np.testing.assert_array_equal(
            np.load(tmp_path / "derived" / name), np.load(tmp_path / "stripped" / name)
        )
    assert (tmp_path / "derived/index.tsv").read_text() == (tmp_path / "stripped/index.tsv").read_text()
    assert json.loads((tmp_path / "derived/preprocess.json").read_text())["skull_strip"] is True
    full = np.load(tmp_path / "full/volumes.npy")
    assert not np.array_equal(full, np.load(tmp_path / "derived/volumes.npy"))  # the skull was there
    with pytest.raises(HTCTInputError, match="skull-stripped already"):
        skull_strip_arrays(tmp_path / "stripped", tmp_path / "twice")
