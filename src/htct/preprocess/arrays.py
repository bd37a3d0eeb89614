"""The cohort's model-ready arrays: every scan of ``scans.tsv`` through :func:`preprocess_volume`.

Outputs are streamed into memory-mapped ``.npy`` files (600 scans x 28 x 512 x 512 in float16 is
8.8 GB), one scan per worker process at a time, and every file appears under its final name only
once complete (temporary name + ``os.replace``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import nibabel as nib
import numpy as np
import pandas as pd

import htct
from htct.errors import HTCTInputError
from htct.outputs import RuleOutputs
from htct.preprocess import brain, volume
from htct.preprocess.geometry import AIR_HU, CropInfo, apply_crop
from htct.preprocess.volume import preprocess_volume
from htct.shards import check_shard, shard_of_patients

log = logging.getLogger(__name__)

SCAN_COLUMNS = ("scan_id", "patient_id", "label", "nifti")
INDEX_COLUMNS = (
    "row",
    "scan_id",
    "patient_id",
    "label",
    "z_first",
    "n_pad_before",
    "n_pad_after",
    "n_brain_slices",
    "source_thickness_mm",
)


@dataclass(frozen=True)
class ArrayOutputs(RuleOutputs):
    """The files of one set of model-ready arrays (rule preprocess's outputs).

    Attributes:
        volumes: float16 [N, C, n_slices, S, S].
        brain_mask: uint8 [N, n_slices, S, S].
        index: one row per scan with its crop.
        parameters: the preprocessing parameters (preprocess.json).
    """

    volumes: Path
    brain_mask: Path
    index: Path
    parameters: Path

    FOLDER_NAMES: ClassVar[tuple[str, ...]] = (
        "volumes.npy",
        "brain_mask.npy",
        "index.tsv",
        "preprocess.json",
    )


@contextmanager
def _atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path next to ``final`` that replaces it on success and is removed on failure."""
    temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def read_scans(scans_tsv: str | Path) -> pd.DataFrame:
    """Read ``scans.tsv`` (identifiers as text) and resolve each ``nifti`` path.

    Relative NIfTI paths are taken from the working directory (the workflow root), else from the
    folder of ``scans.tsv``.
    """
    scans_tsv = Path(scans_tsv)
    scans = pd.read_csv(scans_tsv, sep="\t", dtype={"scan_id": str, "patient_id": str, "nifti": str})
    missing = [column for column in SCAN_COLUMNS if column not in scans.columns]
    if missing:
        raise HTCTInputError(f"{scans_tsv}: missing column(s) {', '.join(missing)}; re-run the convert stage")
    if scans["scan_id"].duplicated().any():
        raise HTCTInputError(
            f"{scans_tsv}: duplicate scan_id {scans['scan_id'][scans['scan_id'].duplicated()].iloc[0]}"
        )

    def resolve(path: str) -> str:
        candidate = Path(path)
        if not candidate.is_absolute() and not candidate.exists() and (scans_tsv.parent / candidate).exists():
            candidate = scans_tsv.parent / candidate
        return str(candidate)

    scans["nifti"] = scans["nifti"].map(resolve)
    return scans


def _load_hu(scan_id: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    if not Path(path).exists():
        raise HTCTInputError(f"scan {scan_id}: NIfTI {path} not found; re-run the convert stage")
    image = nib.load(path)
    if len(image.shape) != 3:
        raise HTCTInputError(f"scan {scan_id}: {path} has shape {image.shape}, expected a 3D volume")
    return np.asarray(image.dataobj, dtype=np.float32), image.affine


def _preprocess_scan(
    row: int,
    scan_id: str,
    nifti: str,
    volumes_path: str,
    mask_path: str,
    params: dict,
) -> dict:
    """Worker: preprocess one scan and write it into row ``row`` of the memory-mapped outputs."""
    hu, affine = _load_hu(scan_id, nifti)
    array, brain_mask, crop = preprocess_volume(hu, affine, **params)
    volumes = np.load(volumes_path, mmap_mode="r+")
    volumes[row] = array
    volumes.flush()
    del volumes
    masks = np.load(mask_path, mmap_mode="r+")
    masks[row] = brain_mask
    masks.flush()
    del masks
    return crop.to_dict()


def build_arrays(
    scans_tsv: str | Path,
    out_dir: str | Path | ArrayOutputs,
    n_slices: int = 28,
    slice_thickness_mm: float = 5.0,
    size: int = 96,
    windows: Sequence[Sequence[float]] = ((40, 80),),
    skull_strip: bool = False,
    threads: int = 1,
    shard: int = 0,
    n_shards: int = 1,
) -> pd.DataFrame:
    """Preprocess every scan of ``scans.tsv`` (or of one shard of its patients) into ``out_dir``.

    Writes ``volumes.npy`` (float16 [N, C, n_slices, size, size] in [0, 1]), ``brain_mask.npy``
    (uint8 [N, n_slices, size, size]), ``index.tsv`` (one row per scan, in ``scans.tsv`` order,
    with the crop of :class:`~htct.preprocess.geometry.CropInfo`) and ``preprocess.json`` (the
    parameters).

    Args:
        scans_tsv: the convert stage's ``scans.tsv`` (scan_id, patient_id, label, nifti, ...).
        out_dir: output folder (created), or the exact files to write (:class:`ArrayOutputs`).
        n_slices: slices per scan.
        slice_thickness_mm: slice thickness the series are resampled to.
        size: in-plane size.
        windows: (centre, width) HU windows, one channel each.
        skull_strip: zero the voxels outside the intracranial mask.
        threads: worker processes (scans are processed in parallel).
        shard: with ``n_shards`` > 1, only the scans of this shard of the patients
            (``htct.shards``); :func:`gather_arrays` joins the shards' arrays.
        n_shards: number of shards of the patients of ``scans.tsv``.

    Returns:
        The index table written to ``index.tsv``.
    """
    outputs = ArrayOutputs.of(out_dir)
    outputs.make_folders()
    scans = read_scans(scans_tsv)
    if scans.empty:
        raise HTCTInputError(f"{scans_tsv}: no scans to preprocess")
    if n_shards > 1:
        check_shard(shard, n_shards)
        shard_of = shard_of_patients(scans["patient_id"], n_shards)
        scans = scans[scans["patient_id"].map(shard_of) == shard].reset_index(drop=True)
        log.info("shard %d of %d: %d scan(s)", shard, n_shards, len(scans))
    windows = [(float(centre), float(width)) for centre, width in windows]
    params = {
        "n_slices": int(n_slices),
        "slice_thickness_mm": float(slice_thickness_mm),
        "size": int(size),
        "windows": windows,
        "skull_strip": bool(skull_strip),
    }
    n_scans = len(scans)
    with (
        _atomic_path(outputs.volumes) as volumes_tmp,
        _atomic_path(outputs.brain_mask) as mask_tmp,
    ):
        # Create the files (header + sparse data) and close them: workers reopen them by path.
        for path, dtype, shape in (
            (volumes_tmp, np.float16, (n_scans, len(windows), n_slices, size, size)),
            (mask_tmp, np.uint8, (n_scans, n_slices, size, size)),
        ):
            np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
        jobs = [
            (row, scan.scan_id, scan.nifti, str(volumes_tmp), str(mask_tmp), params)
            for row, scan in enumerate(scans.itertuples(index=False))
        ]
        if threads > 1 and n_scans > 1:
            with ProcessPoolExecutor(max_workers=min(threads, n_scans)) as pool:
                crops = list(pool.map(_preprocess_scan, *zip(*jobs, strict=True)))
        else:
            crops = [_preprocess_scan(*job) for job in jobs]
        index = pd.DataFrame(
            {
                "row": np.arange(n_scans),
                "scan_id": scans["scan_id"],
                "patient_id": scans["patient_id"],
                "label": scans["label"],
            }
        )
        # The crop columns named also when the shard has no scan (its index.tsv still has the header).
        crop_columns = [field.name for field in dataclasses.fields(CropInfo)]
        index = pd.concat([index, pd.DataFrame(crops, columns=crop_columns)], axis=1)
        index = index[list(INDEX_COLUMNS) + [c for c in index.columns if c not in INDEX_COLUMNS]]
        for scan in index.itertuples(index=False):
            if scan.n_brain_slices == 0:
                log.warning("scan %s: no intracranial tissue found; slab centred on the scan", scan.scan_id)
        with _atomic_path(outputs.index) as index_tmp:
            index.to_csv(index_tmp, sep="\t", index=False)
        settings = {
            **params,
            "htct_version": htct.__version__,
            "n_scans": n_scans,
            "axes": "volumes [scan, window, slice, i, j]; slice and in-plane axes follow the NIfTI voxel axes k, i, j",
            "hu_clip": list(volume.HU_RANGE),
            "mask_grid_mm": volume.MASK_GRID_MM,
            "margin_mm": volume.MARGIN_MM,
            "min_brain_area_mm2": volume.MIN_BRAIN_AREA_MM2,
            "brain_hu": list(brain.BRAIN_HU),
            "bone_hu": brain.BONE_HU,
            "erosion_mm": brain.EROSION_MM,
            "tissue_hu": brain.TISSUE_HU,
        }
        with _atomic_path(outputs.parameters) as json_tmp:
            json_tmp.write_text(json.dumps(settings, indent=2) + "\n")
    log.info("preprocessed %d scans into %s", n_scans, outputs.volumes.parent)
    return index


def gather_arrays(
    scans_tsv: str | Path,
    shards: Sequence[str | Path | ArrayOutputs],
    out_dir: str | Path | ArrayOutputs,
) -> pd.DataFrame:
    """Join the arrays of sharded :func:`build_arrays` runs into those of one run over ``scans.tsv``.

    Rows are copied one scan at a time (the volumes never need to fit in memory) in the order of
    ``scans.tsv``; ``index.tsv`` is joined as text (each value as its shard wrote it) with ``row``
    renumbered; ``preprocess.json`` is the shards' (which must agree) with the total ``n_scans``.
    The files are byte for byte those of one job (tests/test_shards.py).

    Args:
        scans_tsv: the scans table the shards were made from.
        shards: each shard's outputs (folder or :class:`ArrayOutputs`), in shard order.
        out_dir: output folder, or the exact files (:class:`ArrayOutputs`).

    Returns:
        The gathered index table.

    Raises:
        HTCTInputError: shards made with different parameters, or a scan in none or two shards.
    """
    outputs, sources = ArrayOutputs.of(out_dir), [ArrayOutputs.of(shard) for shard in shards]
    outputs.make_folders()
    scans = read_scans(scans_tsv)
    settings = [json.loads(source.parameters.read_text()) for source in sources]
    for source, other in zip(sources[1:], settings[1:], strict=True):
        if {**other, "n_scans": 0} != {**settings[0], "n_scans": 0}:
            raise HTCTInputError(
                f"{source.parameters} differs from {sources[0].parameters}; re-run preprocess"
            )
    text = {"dtype": str, "keep_default_na": False, "sep": "\t"}
    parts = []
    for number, source in enumerate(sources):
        part = pd.read_csv(source.index, **text)
        part["shard"], part["shard_row"] = number, part["row"].astype(int)
        parts.append(part)
    index = pd.concat(parts, ignore_index=True)
    if index["scan_id"].duplicated().any() or set(index["scan_id"]) != set(scans["scan_id"]):
        raise HTCTInputError(
            f"the shards' scans are not those of {scans_tsv}; re-run the preprocess_shard jobs"
        )
    index = index.set_index("scan_id").loc[scans["scan_id"]].reset_index()
    index = index[list(parts[0].columns)]
    index["row"] = np.arange(len(index)).astype(str)
    volumes = [np.load(source.volumes, mmap_mode="r") for source in sources]
    masks = [np.load(source.brain_mask, mmap_mode="r") for source in sources]
    with (
        _atomic_path(outputs.volumes) as volumes_tmp,
        _atomic_path(outputs.brain_mask) as mask_tmp,
    ):
        gathered = {
            "volumes": np.lib.format.open_memmap(
                volumes_tmp, mode="w+", dtype=volumes[0].dtype, shape=(len(index), *volumes[0].shape[1:])
            ),
            "masks": np.lib.format.open_memmap(
                mask_tmp, mode="w+", dtype=masks[0].dtype, shape=(len(index), *masks[0].shape[1:])
            ),
        }
        for row, (number, shard_row) in enumerate(zip(index["shard"], index["shard_row"], strict=True)):
            gathered["volumes"][row] = volumes[number][shard_row]
            gathered["masks"][row] = masks[number][shard_row]
        for array in gathered.values():
            array.flush()
        del gathered
        index = index.drop(columns=["shard", "shard_row"])
        with _atomic_path(outputs.index) as index_tmp:
            index.to_csv(index_tmp, sep="\t", index=False)
        with _atomic_path(outputs.parameters) as json_tmp:
            json_tmp.write_text(json.dumps({**settings[0], "n_scans": len(index)}, indent=2) + "\n")
    log.info("gathered %d scans from %d shard(s) into %s", len(index), len(sources), outputs.volumes.parent)
    return index


def _repeat_crop_scan(
    row: int, scan_id: str, nifti: str, crop: dict, brain_row: np.ndarray, volumes_path: str, params: dict
) -> None:
    """Worker: one scan through a reference scan's crop, written into row ``row`` of ``volumes_path``."""
    hu, _ = _load_hu(scan_id, nifti)
    hu_kij = np.clip(np.ascontiguousarray(hu.transpose(2, 0, 1), dtype=np.float32), *volume.HU_RANGE)
    slab = apply_crop(hu_kij, CropInfo.from_mapping(crop), fill=AIR_HU)
    array = volume.apply_windows(slab, params["windows"])
    if params["skull_strip"]:
        array *= brain_row[None]
    volumes = np.load(volumes_path, mmap_mode="r+")
    volumes[row] = array
    volumes.flush()
    del volumes


def build_arrays_like(
    scans_tsv: str | Path,
    reference: str | Path | ArrayOutputs,
    out_dir: str | Path | ArrayOutputs,
    threads: int = 1,
) -> pd.DataFrame:
    """Preprocess re-rendered versions of scans exactly as their originals were (same crop, windows).

    For counterfactual scans (``htct.synth.counterfactual``): each scan of ``scans_tsv`` is cut
    with the crop its scan_id has in the reference arrays (slice resampling, slab, in-plane box,
    from ``index.tsv``), windowed with the reference's windows and, when the reference is
    skull-stripped, masked with the reference scan's intracranial mask. An unchanged scan gives
    exactly its reference row; a scan that differs only in a lesion differs only there (the crop
    is not re-estimated from the changed image).

    Args:
        scans_tsv: the convert stage's scans.tsv of the re-rendered scans.
        reference: the :func:`build_arrays` outputs (a folder or :class:`ArrayOutputs`) holding every
            scan_id of ``scans_tsv``.
        out_dir: output folder, or the exact files: volumes, brain_mask (the reference rows), index
            (the reference rows, renumbered, with ``reference_row``) and parameters.
        threads: worker processes.

    Returns:
        The index table written.
    """
    source, outputs = ArrayOutputs.of(reference), ArrayOutputs.of(out_dir)
    outputs.make_folders()
    scans = read_scans(scans_tsv)
    reference_index = pd.read_csv(source.index, sep="\t", dtype={"scan_id": str, "patient_id": str})
    settings = json.loads(source.parameters.read_text())
    missing = sorted(set(scans["scan_id"]) - set(reference_index["scan_id"]))
    if missing:
        raise HTCTInputError(f"{scans_tsv}: scans {missing[:3]} are not in {source.index}")
    index = reference_index.set_index("scan_id").loc[scans["scan_id"]].reset_index()
    index = index.rename(columns={"row": "reference_row"})
    index.insert(0, "row", np.arange(len(index)))
    reference_masks = np.load(source.brain_mask, mmap_mode="r")
    params = {
        "windows": [tuple(w) for w in settings["windows"]],
        "skull_strip": bool(settings["skull_strip"]),
    }
    n_slices, size = int(settings["n_slices"]), int(settings["size"])
    niftis = scans.set_index("scan_id")["nifti"]
    with (
        _atomic_path(outputs.volumes) as volumes_tmp,
        _atomic_path(outputs.brain_mask) as mask_tmp,
    ):
        shape = (len(index), len(params["windows"]), n_slices, size, size)
        np.lib.format.open_memmap(volumes_tmp, mode="w+", dtype=np.float16, shape=shape).flush()
        masks = reference_masks[index["reference_row"].to_numpy()]
        with open(mask_tmp, "wb") as handle:  # np.save(path) would append .npy to the name
            np.save(handle, masks)
        jobs = [
            (
                int(row.row),
                row.scan_id,
                niftis[row.scan_id],
                row._asdict(),
                masks[int(row.row)],
                str(volumes_tmp),
                params,
            )
            for row in index.itertuples(index=False)
        ]
        if threads > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
                list(pool.map(_repeat_crop_scan, *zip(*jobs, strict=True)))
        else:
            for job in jobs:
                _repeat_crop_scan(*job)
        with _atomic_path(outputs.index) as index_tmp:
            index.to_csv(index_tmp, sep="\t", index=False)
        with _atomic_path(outputs.parameters) as json_tmp:
            json_tmp.write_text(
                json.dumps(
                    {**settings, "n_scans": len(index), "reference": str(source.index.parent)}, indent=2
                )
                + "\n"
            )
    log.info(
        "preprocessed %d scans into %s with the crops of %s",
        len(index),
        outputs.volumes.parent,
        source.index.parent,
    )
    return index


def skull_strip_arrays(
    source_dir: str | Path | ArrayOutputs, out_dir: str | Path | ArrayOutputs
) -> pd.DataFrame:
    """The skull-stripped version of full-head arrays, without preprocessing the scans again.

    Skull stripping is the last step of :func:`preprocess_volume` (every channel set to 0 outside the
    intracranial mask, whose crop does not depend on it), so multiplying the full-head arrays by
    their brain masks gives exactly what :func:`build_arrays` with ``skull_strip=True`` writes, in
    seconds instead of a second pass over every scan.

    Args:
        source_dir: :func:`build_arrays` outputs (a folder or :class:`ArrayOutputs`) made with
            ``skull_strip=False``.
        out_dir: output folder, or the exact files (:class:`ArrayOutputs`).

    Returns:
        The index table (the source's).
    """
    source, outputs = ArrayOutputs.of(source_dir), ArrayOutputs.of(out_dir)
    outputs.make_folders()
    settings = json.loads(source.parameters.read_text())
    if settings["skull_strip"]:
        raise HTCTInputError(
            f"{source.parameters}: the arrays are skull-stripped already; strip full-head arrays"
        )
    volumes = np.load(source.volumes, mmap_mode="r")
    masks = np.load(source.brain_mask, mmap_mode="r")
    with _atomic_path(outputs.volumes) as volumes_tmp:
        stripped = np.lib.format.open_memmap(volumes_tmp, mode="w+", dtype=volumes.dtype, shape=volumes.shape)
        for row in range(len(volumes)):
            stripped[row] = volumes[row] * masks[row][None]
        stripped.flush()
        del stripped
    for copy_from, copy_to in ((source.brain_mask, outputs.brain_mask), (source.index, outputs.index)):
        with _atomic_path(copy_to) as tmp:
            tmp.write_bytes(copy_from.read_bytes())
    with _atomic_path(outputs.parameters) as json_tmp:
        json_tmp.write_text(json.dumps({**settings, "skull_strip": True}, indent=2) + "\n")
    log.info(
        "skull-stripped %d scans of %s into %s", len(volumes), source.volumes.parent, outputs.volumes.parent
    )
    return pd.read_csv(outputs.index, sep="\t", dtype={"scan_id": str, "patient_id": str})


def build_lesion_masks(
    index_tsv: str | Path,
    scans_tsv: str | Path,
    masks_dir: str | Path,
    out_npy: str | Path,
    n_slices: int = 28,
    slice_thickness_mm: float = 5.0,
    size: int = 96,
) -> None:
    """Bring lesion masks ``masks_dir/{scan_id}.nii.gz`` into the arrays' crop (synthetic cohort).

    Every mask goes through the same slice resampling, slab and in-plane resampling as its scan
    (:func:`~htct.preprocess.geometry.apply_crop`, linear with anti-aliasing), then is thresholded
    at 0.5: a voxel is lesion when at least half of what it averages is.

    Args:
        index_tsv: ``index.tsv`` from :func:`build_arrays` (holds each scan's crop).
        scans_tsv: ``scans.tsv``; the masks must be in the grid of each scan's NIfTI.
        masks_dir: folder of uint8 masks named ``{scan_id}.nii.gz``.
        out_npy: output uint8 [N, n_slices, size, size], rows as in ``index.tsv``.
        n_slices: must match the arrays (checked against ``index.tsv``).
        slice_thickness_mm: must match the arrays.
        size: must match the arrays.
    """
    index = pd.read_csv(index_tsv, sep="\t", dtype={"scan_id": str, "patient_id": str})
    scans = read_scans(scans_tsv).set_index("scan_id")
    masks_dir, out_npy = Path(masks_dir), Path(out_npy)
    out_npy.parent.mkdir(parents=True, exist_ok=True)
    for name, value in (("n_slices", n_slices), ("slice_thickness_mm", slice_thickness_mm), ("size", size)):
        if not np.allclose(index[name].astype(float), float(value)):
            raise HTCTInputError(f"{index_tsv}: {name} differs from {value}; re-run the preprocess stage")
    with _atomic_path(out_npy) as out_tmp:
        lesion = np.lib.format.open_memmap(
            out_tmp, mode="w+", dtype=np.uint8, shape=(len(index), n_slices, size, size)
        )
        for row in index.itertuples(index=False):
            crop = CropInfo.from_mapping(row._asdict())
            mask_path = masks_dir / f"{row.scan_id}.nii.gz"
            if not mask_path.exists():
                raise HTCTInputError(f"scan {row.scan_id}: lesion mask {mask_path} not found")
            if row.scan_id not in scans.index:
                raise HTCTInputError(
                    f"scan {row.scan_id} of {index_tsv} is not in {scans_tsv}; re-run preprocess"
                )
            scan_image = nib.load(scans.loc[row.scan_id, "nifti"])
            mask_image = nib.load(mask_path)
            mask = np.asarray(mask_image.dataobj, dtype=np.float32)
            if mask.shape != tuple(scan_image.shape) or mask.shape != crop.source_shape:
                raise HTCTInputError(
                    f"scan {row.scan_id}: lesion mask {mask_path} has shape {mask.shape}, "
                    f"the scan {tuple(scan_image.shape)}"
                )
            # Same shape is not enough: a mirrored grid has the same shape but another affine.
            if not np.allclose(mask_image.affine, scan_image.affine, atol=1e-3):
                raise HTCTInputError(
                    f"scan {row.scan_id}: lesion mask {mask_path} is not in the scan's voxel grid "
                    "(affines differ); resample it onto the converted NIfTI first"
                )
            cropped = apply_crop((mask > 0).astype(np.float32).transpose(2, 0, 1), crop, fill=0.0)
            lesion[row.row] = cropped >= 0.5
        lesion.flush()
        del lesion
