"""Convert a DICOM tree to one HU NIfTI per study (`convert_tree`), with a QC row for every series.

Outputs follow docs/architecture.md: results/nifti/{scan_id}.nii.gz, results/qc/series.tsv (every
series and every non-DICOM file, kept or excluded with a reason) and results/qc/scans.tsv (kept scans).
No protected health information is written: patients appear only by their pseudonymous ``patient_id``
from the clinical sheet, series by ``series_key``, unidentifiable files by ``file_key``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from htct.dicom.discover import SliceHeader, file_key, iter_files, read_header, series_key, sop_class_name
from htct.dicom.series import GANTRY_TILT_POLICIES, UNEVEN_SPACING_POLICIES, SeriesVerdict, classify_series
from htct.dicom.volume import PixelDataError, build_hu_volume, write_nifti
from htct.errors import HTCTInputError

log = logging.getLogger(__name__)

QC_COLUMNS = [
    "series_key", "patient_id", "scan_id", "study_rank", "modality", "sop_class", "image_type", "n_files",
    "n_slices", "rows", "columns", "pixel_spacing_mm", "slice_thickness_mm", "slice_spacing_mm", "tilt_deg",
    "correction", "status", "reason", "notes",
]  # fmt: skip
SCANS_COLUMNS = [
    "scan_id", "patient_id", "label", "study_rank", "nifti", "n_slices", "slice_thickness_mm",
    "slice_spacing_mm", "pixel_spacing_mm", "rows", "columns", "series_key",
]  # fmt: skip
# architecture.md: of several acceptable axial series in one study, keep the one closest to 5 mm.
PREFERRED_THICKNESS_MM = 5.0
HEADER_PROCESS_THRESHOLD = 400  # below this many files, process start-up costs more than it saves


@dataclass
class Series:
    """All files of one SeriesInstanceUID and what the rules decided about them."""

    uid: str
    slices: list[SliceHeader]
    verdict: SeriesVerdict = field(default_factory=SeriesVerdict)
    patient_id: str = ""
    study_rank: int | None = None
    scan_id: str = ""
    nifti: str = ""

    @property
    def first(self) -> SliceHeader:
        return self.slices[0]

    @property
    def study_key(self) -> str:
        """StudyInstanceUID; a series without one is taken as a study of its own."""
        return self.first.study_uid or f"series:{self.uid}"


def load_clinical(path: str | Path) -> pd.DataFrame:
    """The validated clinical sheet (htct.sheets); a seam so tests and other sheets can swap it."""
    from htct.sheets import load_clinical as load_sheet

    return load_sheet(path)


def _read_headers(paths: list[Path], dicom_dir: Path, threads: int) -> list[SliceHeader]:
    # Header parsing is pure Python (GIL-bound): processes, not threads, and only for large trees.
    if threads > 1 and len(paths) >= HEADER_PROCESS_THRESHOLD:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(read_header, paths, [dicom_dir] * len(paths), chunksize=64))
    return [read_header(path, dicom_dir) for path in paths]


def _study_ranks(series: Iterable[Series]) -> dict[tuple[str, str], int]:
    """Rank each patient's studies by StudyDate, StudyTime, StudyInstanceUID (1 = earliest).

    Every study of the patient found in the tree counts, kept or not, so a scan_id does not change
    when a QC rule or another series changes.
    """
    studies: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for s in series:
        if s.patient_id:
            studies[s.patient_id].add((s.first.study_date, s.first.study_time, s.study_key))
    ranks = {}
    for patient_id, keys in studies.items():
        for rank, (_, _, study_key) in enumerate(sorted(keys), start=1):
            ranks[(patient_id, study_key)] = rank
    return ranks


def _preference(s: Series) -> tuple[float, int, str]:
    thickness = s.first.slice_thickness
    distance = abs(thickness - PREFERRED_THICKNESS_MM) if thickness is not None else float("inf")
    return (distance, -len(s.slices), series_key(s.uid))


def _convert_one(slices: list[SliceHeader], verdict: SeriesVerdict, path: Path, threads: int) -> str:
    """Build and write one volume; returns "" or the QC reason when its pixels cannot be read."""
    try:
        volume = build_hu_volume(slices, verdict.geometry, threads, verdict.correction)  # type: ignore[arg-type]
    except PixelDataError as error:
        return str(error)
    write_nifti(volume, path, threads=threads)
    return ""


def _fmt(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _qc_row(s: Series) -> dict:
    first = s.first
    geometry = s.verdict.geometry
    if first.problem:  # a file that is not a DICOM image: one row per file, keyed by its path hash
        return {
            "series_key": file_key(first.relative_path), "n_files": 1, "status": "excluded",
            "reason": first.problem,
        }  # fmt: skip
    spacing = first.pixel_spacing
    return {
        "series_key": series_key(s.uid),
        "patient_id": s.patient_id,
        "scan_id": s.scan_id,
        "study_rank": s.study_rank,
        "modality": first.modality,
        "sop_class": sop_class_name(first.sop_class_uid),
        "image_type": "\\".join(first.image_type),
        "n_files": len(s.slices),
        "n_slices": len(s.slices) if geometry is not None else None,
        "rows": first.rows,
        "columns": first.columns,
        "pixel_spacing_mm": _fmt(spacing[0]) if spacing else None,
        "slice_thickness_mm": _fmt(first.slice_thickness),
        "slice_spacing_mm": _fmt(geometry.slice_spacing_mm) if geometry is not None else None,
        "tilt_deg": _fmt(geometry.tilt_deg, 2) if geometry is not None else None,
        "correction": s.verdict.correction.describe() if s.verdict.correction is not None else "",
        "status": "kept" if s.scan_id and not s.verdict.reason else "excluded",
        "reason": s.verdict.reason,
        "notes": "; ".join(s.verdict.notes),
    }


def _grid_columns(s: Series) -> dict:
    """The voxel grid of a kept scan's NIfTI (the resampled grid for a tilt/gap-corrected series)."""
    grid, geometry = s.verdict.correction, s.verdict.geometry
    spacing = grid.spacing_mm if grid is not None else geometry.slice_spacing_mm  # type: ignore[union-attr]
    return {
        "n_slices": grid.n_slices if grid is not None else len(s.slices),
        "slice_thickness_mm": _fmt(s.first.slice_thickness),
        "slice_spacing_mm": _fmt(spacing),
        "pixel_spacing_mm": _fmt(s.first.pixel_spacing[0]),  # type: ignore[index]
        "rows": grid.n_rows if grid is not None else s.first.rows,
        "columns": grid.n_columns if grid is not None else s.first.columns,
    }


def convert_tree(
    dicom_dir: str | Path,
    clinical_csv: str | Path,
    nifti_dir: str | Path,
    qc_tsv: str | Path,
    scans_tsv: str | Path,
    min_slices: int = 20,
    gantry_tilt: str = "correct",
    max_spacing_deviation_mm: float = 0.1,
    threads: int = 1,
    uneven_spacing: str = "equalise",
) -> pd.DataFrame:
    """Convert every acceptable axial CT study under ``dicom_dir`` to ``{nifti_dir}/{scan_id}.nii.gz``.

    Files are recognised by content in any layout and grouped by SeriesInstanceUID. Each series is
    kept or excluded by the rules in ``htct.dicom.series.classify_series`` (scout, secondary capture,
    non-CT, too few slices, duplicate or missing slices, gantry tilt, uneven spacing, inconsistent
    matrix, unreadable pixels, missing codec), then by patient (not in the clinical sheet) and by
    study (one scan per study: thickness closest to 5 mm, then most slices).

    Args:
        dicom_dir: root of the DICOM tree.
        clinical_csv: clinical sheet; its ``dicom_patient_id`` (or ``patient_id``) is matched to PatientID.
        nifti_dir: folder for the HU volumes.
        qc_tsv: QC table, one row per series and per non-DICOM file.
        scans_tsv: table of the kept scans.
        min_slices: fewer axial slices than this excludes a series.
        gantry_tilt: "correct" (resample tilted series onto an orthogonal grid, as dcm2niix) or
            "refuse" (exclude them).
        max_spacing_deviation_mm: gaps further than this from the median gap are uneven.
        uneven_spacing: "equalise" (resample unevenly spaced series to even spacing, as dcm2niix) or
            "refuse" (exclude them). Gaps that leave a hole (missing slices) are refused either way.
        threads: CPU cores to use (series in parallel processes, or slice reads and gzip in threads).

    Returns:
        The scans table (also written to ``scans_tsv``).

    Raises:
        HTCTInputError: ``dicom_dir`` missing or without any DICOM file, unreadable clinical sheet,
            unsupported option.

    Example:
        >>> scans = convert_tree("dicom/", "clinical.csv", "results/nifti", "results/qc/series.tsv",
        ...                      "results/qc/scans.tsv", threads=2)  # doctest: +SKIP
    """
    dicom_dir, nifti_dir = Path(dicom_dir), Path(nifti_dir)
    for key, value, allowed in (
        ("gantry_tilt", gantry_tilt, GANTRY_TILT_POLICIES),
        ("uneven_spacing", uneven_spacing, UNEVEN_SPACING_POLICIES),
    ):
        if value not in allowed:
            raise HTCTInputError(
                f"convert.{key}: {value!r} is not one of {', '.join(allowed)}; fix config.yaml"
            )
    if not dicom_dir.is_dir():
        raise HTCTInputError(f"DICOM folder not found: {dicom_dir} (set data: dicom_dir in config.yaml)")
    clinical = load_clinical(clinical_csv)
    patient_of = dict(
        zip(clinical["dicom_patient_id"].astype(str), clinical["patient_id"].astype(str), strict=True)
    )

    headers = _read_headers(list(iter_files(dicom_dir)), dicom_dir, threads)
    if not any(not h.problem for h in headers):
        raise HTCTInputError(
            f"no DICOM image found in {dicom_dir} ({len(headers)} files looked at); point data: dicom_dir "
            "in config.yaml at the folder holding the exported DICOM files"
        )
    nifti_dir.mkdir(parents=True, exist_ok=True)  # also when nothing is kept: Snakemake expects the folder
    series: list[Series] = []
    by_uid: dict[str, list[SliceHeader]] = defaultdict(list)
    for header in headers:
        if header.problem:
            series.append(Series(uid="", slices=[header]))
        elif not header.series_uid:
            header.problem = "DICOM file without SeriesInstanceUID"
            series.append(Series(uid="", slices=[header]))
        else:
            by_uid[header.series_uid].append(header)
    images = [Series(uid=uid, slices=slices) for uid, slices in by_uid.items()]
    series += images

    for s in images:
        s.patient_id = patient_of.get(s.first.patient_id, "")
        s.verdict = classify_series(
            s.slices, min_slices, gantry_tilt, max_spacing_deviation_mm, uneven_spacing
        )
        if not s.verdict.reason and not s.patient_id:
            s.verdict.reason = "patient not in the clinical sheet (PatientID matches no dicom_patient_id)"
    ranks = _study_ranks(images)
    candidates: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for s in images:
        if s.patient_id:
            s.study_rank = ranks[(s.patient_id, s.study_key)]
        if not s.verdict.reason:
            candidates[(s.patient_id, s.study_key)].append(s)

    # One scan per study; when the preferred series' pixels turn out unreadable, the next one is tried.
    pending = {study: sorted(group, key=_preference) for study, group in candidates.items()}
    while pending:
        picks = {study: group[0] for study, group in pending.items()}
        for s in picks.values():
            s.scan_id = f"{s.patient_id}_scan{s.study_rank}"
            s.nifti = str(nifti_dir / f"{s.scan_id}.nii.gz")
        jobs = list(picks.values())
        if threads > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=threads) as pool:
                reasons = list(pool.map(_convert_one, [s.slices for s in jobs], [s.verdict for s in jobs],
                                        [Path(s.nifti) for s in jobs], [1] * len(jobs)))  # fmt: skip
        else:
            reasons = [_convert_one(s.slices, s.verdict, Path(s.nifti), threads) for s in jobs]
        next_pending = {}
        for (study, pick), reason in zip(picks.items(), reasons, strict=True):
            if reason:
                pick.verdict.reason, pick.scan_id, pick.nifti = reason, "", ""
                if len(pending[study]) > 1:
                    next_pending[study] = pending[study][1:]
            else:
                for other in pending[study][1:]:
                    other.verdict.reason = f"duplicate series in study (kept series {series_key(pick.uid)})"
        pending = next_pending

    qc = pd.DataFrame([_qc_row(s) for s in series], columns=QC_COLUMNS)
    for column in ("study_rank", "n_files", "n_slices", "rows", "columns"):
        qc[column] = qc[column].astype("Int64")
    qc = qc.sort_values(["status", "patient_id", "study_rank", "series_key"], ascending=[False, True, True, True],
                        na_position="last", kind="stable")  # fmt: skip
    kept = [s for s in images if s.scan_id]
    label_of = dict(zip(clinical["patient_id"].astype(str), clinical["label"].astype(int), strict=True))
    scans = pd.DataFrame(
        [
            {
                "scan_id": s.scan_id,
                "patient_id": s.patient_id,
                "label": label_of[s.patient_id],
                "study_rank": s.study_rank,
                "nifti": s.nifti,
                **_grid_columns(s),
                "series_key": series_key(s.uid),
            }
            for s in kept
        ],
        columns=SCANS_COLUMNS,
    ).sort_values(["patient_id", "study_rank"], kind="stable")
    for path, table in ((qc_tsv, qc), (scans_tsv, scans)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, sep="\t", index=False)

    without_scan = sorted(set(clinical["patient_id"].astype(str)) - {s.patient_id for s in kept})
    if without_scan:
        log.warning(
            "%d patient(s) in the clinical sheet have no kept scan (see %s): %s",
            len(without_scan), qc_tsv, ", ".join(without_scan[:20]) + (" ..." if len(without_scan) > 20 else ""),
        )  # fmt: skip
    log.info(
        "converted %d scan(s); %d series/files excluded (see %s)",
        len(kept),
        int((qc["status"] == "excluded").sum()),
        qc_tsv,
    )
    return scans.reset_index(drop=True)
