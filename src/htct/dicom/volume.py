"""Stack sorted slices into a Hounsfield-unit volume and write it as NIfTI with a RAS+ affine.

Speed matters for cohorts of thousands of 512x512 series, so uncompressed pixels are read straight
from the file offset found during discovery (numpy.frombuffer), slices are read in a thread pool, the
voxel array is laid out once in its final (closest-to-RAS) order and gzip runs block-parallel.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from htct.dicom.discover import SliceHeader
from htct.dicom.resample import GridCorrection, corrected_affine_lps, resample_to_grid
from htct.dicom.series import SeriesGeometry

try:  # ISA-L's deflate is ~3x faster than zlib at the same ratio (benchmarks/bench_convert.py); optional
    from isal import isal_zlib as deflate_backend

    DEFLATE_BACKEND = "isal"
except ImportError:  # pragma: no cover - depends on the environment
    deflate_backend = zlib
    DEFLATE_BACKEND = "zlib"

INT16_MIN, INT16_MAX = -32768, 32767
# nibabel's NIfTI-1 single-file layout: 348-byte header + 4-byte extension flag, data at byte 352.
VOX_OFFSET = 352
GZIP_BLOCK_BYTES = 4 << 20
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class PixelDataError(RuntimeError):
    """A slice's pixel data could not be read or decoded (its message is the QC reason)."""


@dataclass
class HUVolume:
    """Voxel array as stored on disk plus the scaling that turns it into HU."""

    stored: np.ndarray  # C-contiguous [k, j, i] (slice, row, column) = NIfTI's Fortran-order [i, j, k]
    affine: np.ndarray  # RAS+ voxel-to-world affine for the [i, j, k] axes
    scl_slope: float
    scl_inter: float
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """NIfTI (i, j, k) shape."""
        return self.stored.shape[::-1]


def dicom_affine(slices: list[SliceHeader], geometry: SeriesGeometry) -> np.ndarray:
    """RAS+ affine of the voxel grid (i = column, j = row, k = slice in ``geometry.order``).

    DICOM gives LPS world coordinates: voxel (i, j) of a slice lies at
    ImagePositionPatient + i * PixelSpacing[1] * row_cosine + j * PixelSpacing[0] * column_cosine.
    The slice axis is the mean step from the first to the last sorted slice (for a tilted series this
    column is not orthogonal to the slice plane).
    """
    row_spacing, column_spacing = slices[0].pixel_spacing  # type: ignore[misc]
    n = len(slices)
    first = geometry.positions_mm[0]
    step = (
        (geometry.positions_mm[-1] - first) / (n - 1)
        if n > 1
        else geometry.normal * (slices[0].slice_thickness or 1.0)
    )
    affine = np.eye(4)
    affine[:3, 0] = geometry.row_cosine * column_spacing
    affine[:3, 1] = geometry.column_cosine * row_spacing
    affine[:3, 2] = step
    affine[:3, 3] = first
    return LPS_TO_RAS @ affine


def _raw_dtype(header: SliceHeader) -> np.dtype:
    kind = "i" if header.pixel_representation == 1 else "u"
    return np.dtype(f"<{kind}{header.bits_allocated // 8}")


def read_stored_values(header: SliceHeader) -> np.ndarray:
    """Stored pixel values (before rescale) of one slice as a [rows, columns] array.

    Raises:
        PixelDataError: truncated file, or compressed data that fails to decode.
    """
    n_pixels = header.rows * header.columns
    dtype = _raw_dtype(header)
    signed_partial = header.pixel_representation == 1 and header.bits_stored < header.bits_allocated
    if header.is_native and not signed_partial:
        # Straight from the file: ~5x faster than a full pydicom parse + pixel_array per slice.
        with open(header.path, "rb") as handle:
            handle.seek(header.pixel_offset)
            buffer = handle.read(n_pixels * dtype.itemsize)
        if len(buffer) < n_pixels * dtype.itemsize:
            raise PixelDataError("truncated pixel data")
        return np.frombuffer(buffer, dtype=dtype).reshape(header.rows, header.columns)
    try:
        pixels = pydicom.dcmread(header.path, force=True).pixel_array
    except Exception as error:  # noqa: BLE001 - decoders raise many types; all mean "unreadable pixels"
        raise PixelDataError(f"unreadable pixel data ({type(error).__name__})") from error
    if pixels.shape != (header.rows, header.columns):
        raise PixelDataError(f"pixel array shape {pixels.shape} does not match Rows x Columns")
    return pixels


def _stored_range(header: SliceHeader) -> tuple[int, int]:
    """Smallest and largest value BitsStored/PixelRepresentation allow."""
    bits = header.bits_stored or header.bits_allocated
    if header.pixel_representation == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << header.bits_allocated) - 1  # unsigned high bits beyond BitsStored are not masked


def _rescale(slices: list[SliceHeader]) -> tuple[np.ndarray, np.ndarray]:
    slopes = np.array([1.0 if s.rescale_slope is None else s.rescale_slope for s in slices])
    intercepts = np.array([0.0 if s.rescale_intercept is None else s.rescale_intercept for s in slices])
    return slopes, intercepts


def _closest_ras(
    affine: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Flips (per i, j, k) that bring the grid to the closest RAS+ order, the affine after them, and the
    axis permutation nibabel still has to apply (None when the axes are already in i -> R, j -> A, k -> S
    order, the usual case).
    """
    affine = affine.copy()
    orientation = nib.orientations.io_orientation(affine)
    if not np.array_equal(orientation[:, 0], [0, 1, 2]):
        return affine, np.zeros(3, dtype=bool), orientation
    flips = orientation[:, 1] < 0
    for axis in np.flatnonzero(flips):
        affine[:3, 3] += affine[:3, axis] * (shape[axis] - 1)
        affine[:3, axis] *= -1
    return affine, flips, None


def _permute(
    out: np.ndarray, affine: np.ndarray, orientation: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if orientation is None:
        return out, affine
    # Rare (row cosine along A-P): let nibabel permute, at the cost of one extra copy.
    data = nib.orientations.apply_orientation(out.T, orientation)
    affine = affine @ nib.orientations.inv_ornt_aff(orientation, out.shape[::-1])
    return np.ascontiguousarray(data.T), affine


def _read_stack(
    ordered: list[SliceHeader], slopes: np.ndarray, intercepts: np.ndarray, threads: int
) -> np.ndarray:
    """float32 HU [slice, row, column] of the slices in the given order."""
    out = np.empty((len(ordered), ordered[0].rows, ordered[0].columns), dtype=np.float32)

    def fill(k: int) -> None:
        out[k] = read_stored_values(ordered[k]) * slopes[k] + intercepts[k]

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(fill, range(len(ordered))))
    return out


def _build_corrected_volume(
    ordered: list[SliceHeader], geometry: SeriesGeometry, correction: GridCorrection, threads: int
) -> HUVolume:
    """Tilted or unevenly spaced slices resampled onto the correction's grid (htct.dicom.resample)."""
    slopes, intercepts = _rescale(ordered)
    hu = resample_to_grid(_read_stack(ordered, slopes, intercepts, threads), correction)
    affine = LPS_TO_RAS @ corrected_affine_lps(geometry, ordered[0].pixel_spacing, correction)  # type: ignore[arg-type]
    affine, flips, orientation = _closest_ras(affine, hu.shape[::-1])
    hu = hu[:: -1 if flips[2] else 1, :: -1 if flips[1] else 1, :: -1 if flips[0] else 1]
    integer_hu = bool(np.all(slopes == 1) and np.all(intercepts == np.round(intercepts)))
    if integer_hu and hu.min() >= INT16_MIN and hu.max() <= INT16_MAX:  # interpolated HU rounded, as dcm2niix
        stored = np.empty(hu.shape, dtype=np.int16)
        np.rint(hu, out=stored, casting="unsafe")
    else:
        stored = np.ascontiguousarray(hu)
    stored, affine = _permute(stored, affine, orientation)
    return HUVolume(stored=stored, affine=affine, scl_slope=1.0, scl_inter=0.0, notes=[correction.describe()])


def build_hu_volume(
    slices: list[SliceHeader],
    geometry: SeriesGeometry,
    threads: int = 1,
    correction: GridCorrection | None = None,
) -> HUVolume:
    """Read, sort and rescale the slices into the smallest exact on-disk type.

    Storage: int16 HU when every slope is 1 and every intercept integral (and HU fits int16); the raw
    int16 values with NIfTI scl_slope/scl_inter when all slices share a slope/intercept; float32 HU
    otherwise. Axes are flipped (and, if needed, permuted) to the closest RAS+ order, so downstream
    code can assume i -> R, j -> A, k -> S.

    Args:
        slices: the series' headers (any order).
        geometry: from ``measure_geometry``.
        threads: slice reads in parallel.
        correction: the grid of a tilted or unevenly spaced series (``SeriesVerdict.correction``):
            the slices are resampled onto it (int16 HU rounded from the interpolated values, or
            float32 HU when the series does not store integer HU).

    Returns:
        The volume and its RAS+ affine.
    """
    ordered = [slices[i] for i in geometry.order]
    if correction is not None:
        return _build_corrected_volume(ordered, geometry, correction, threads)
    shape = (ordered[0].columns, ordered[0].rows, len(ordered))
    affine, flips, orientation = _closest_ras(dicom_affine(ordered, geometry), shape)
    if flips[2]:
        ordered = ordered[::-1]
    row_step = -1 if flips[1] else 1  # j (rows) is axis 0 of a slice array
    column_step = -1 if flips[0] else 1

    slopes, intercepts = _rescale(ordered)
    integer_hu = bool(np.all(slopes == 1) and np.all(intercepts == np.round(intercepts)))
    shared = bool(np.all(slopes == slopes[0]) and np.all(intercepts == intercepts[0]))
    # The storage is chosen from the headers; a slice whose values would overflow it (checked per
    # slice, so each slice is read and converted in one pass) sends the whole volume to the next one.
    storages = (["int16_hu"] if integer_hu else []) + (["int16_scaled"] if shared else []) + ["float32"]
    for storage in storages:
        out = np.empty(shape[::-1], dtype=np.float32 if storage == "float32" else np.int16)

        def fill(k: int, storage: str = storage, out: np.ndarray = out) -> bool:
            values = read_stored_values(ordered[k])[::row_step, ::column_step]
            if storage == "float32":
                out[k] = values * slopes[k] + intercepts[k]
                return True
            offset = intercepts[k] if storage == "int16_hu" else 0.0
            low, high = _stored_range(ordered[k])
            if low + offset < INT16_MIN or high + offset > INT16_MAX:  # only then look at the values
                if int(values.min()) + offset < INT16_MIN or int(values.max()) + offset > INT16_MAX:
                    return False
            np.add(values, np.int32(offset), out=out[k], casting="unsafe")
            return True

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            if all(pool.map(fill, range(len(ordered)))):
                break
    scl_slope, scl_inter = (
        (float(slopes[0]), float(intercepts[0])) if storage == "int16_scaled" else (1.0, 0.0)
    )
    out, affine = _permute(out, affine, orientation)
    return HUVolume(stored=out, affine=affine, scl_slope=scl_slope, scl_inter=scl_inter)


def nifti_header(volume: HUVolume) -> nib.Nifti1Header:
    """NIfTI-1 header for the volume: scanner-anchored qform/sform, mm units, no identifying text."""
    header = nib.Nifti1Header()
    header.set_data_shape(volume.shape)
    header.set_data_dtype(volume.stored.dtype)
    header.set_qform(volume.affine, code=1)
    header.set_sform(volume.affine, code=1)
    header.set_xyzt_units("mm", "sec")
    header.set_slope_inter(volume.scl_slope, volume.scl_inter)
    header["vox_offset"] = VOX_OFFSET
    header["descrip"] = b"htct dicom conversion (HU)"
    return header


def _parallel_gzip(parts: list[memoryview], level: int, threads: int) -> list[bytes]:
    """One gzip member compressed block-parallel, like pigz (deflate blocks ended by a sync flush).

    Python's gzip is single-threaded; splitting the stream this way keeps a standard single-member
    gzip file while using every core (zlib releases the GIL). Measured in benchmarks/bench_convert.py.
    """
    blocks = [
        part[start : start + GZIP_BLOCK_BYTES]
        for part in parts
        for start in range(0, len(part), GZIP_BLOCK_BYTES)
    ]

    # isal has levels 0-3 (its 1 ~ zlib's 1 in ratio); zlib 1-9.
    level = min(level, 3) if DEFLATE_BACKEND == "isal" else level

    def deflate(index: int) -> bytes:
        compressor = deflate_backend.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        flush = zlib.Z_FINISH if index == len(blocks) - 1 else zlib.Z_SYNC_FLUSH
        return compressor.compress(blocks[index]) + compressor.flush(flush)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [pool.submit(deflate, i) for i in range(len(blocks))]
        crc, size = 0, 0
        for block in blocks:  # overlaps with the deflate threads
            crc = deflate_backend.crc32(block, crc)
            size += len(block)
        compressed = [future.result() for future in futures]
    # gzip header: magic, deflate, no flags, mtime 0 (reproducible files), XFL 4 (fastest), OS unknown.
    head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"
    return [head, *compressed, struct.pack("<II", crc, size & 0xFFFFFFFF)]


def write_nifti(volume: HUVolume, path: str | Path, threads: int = 1, compresslevel: int = 1) -> Path:
    """Write ``volume`` as NIfTI-1 (.nii.gz gzip level ``compresslevel``, or .nii uncompressed).

    Args:
        volume: from ``build_hu_volume``.
        path: output file.
        threads: parallel gzip blocks.
        compresslevel: zlib level; 1 is ~5x faster than nibabel/gzip's 9 for ~10% larger CT files.

    Returns:
        The path written.
    """
    path = Path(path)
    header = nifti_header(volume)
    parts = [
        memoryview(header.binaryblock + b"\x00" * (VOX_OFFSET - 348)),
        memoryview(volume.stored).cast("B"),
    ]
    if path.name.endswith(".gz"):
        parts = [memoryview(chunk) for chunk in _parallel_gzip(parts, compresslevel, threads)]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    with open(temporary, "wb") as handle:
        for part in parts:
            handle.write(part)
    temporary.replace(path)
    return path
