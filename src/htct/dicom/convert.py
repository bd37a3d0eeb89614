"""Convert a DICOM tree to one HU NIfTI per study (`convert_tree`), with a QC row for every series.

Outputs follow docs/architecture.md: results/nifti/{scan_id}.nii.gz, results/qc/series.tsv (every
series and every non-DICOM file, kept or excluded with a reason) and results/qc/scans.tsv (kept scans).
No protected health information is written: patients appear only by their pseudonymous ``patient_id``
from the clinical sheet, series by ``series_key``, unidentifiable files by ``file_key``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from htct.dicom.discover import SliceHeader, file_key, iter_files, read_header, series_key, sop_class_name
from htct.dicom.reconstruction import Reconstruction, classify_reconstruction
from htct.dicom.series import (
    GANTRY_TILT_POLICIES,
    UNEVEN_SPACING_POLICIES,
    SeriesVerdict,
    classify_series,
    drop_identical_copies,
)
from htct.dicom.volume import PixelDataError, build_hu_volume, write_nifti
from htct.errors import HTCTInputError
from htct.shards import ListingDigest, check_listing, read_shard_index

log = logging.getLogger(__name__)

QC_COLUMNS = [
    "series_key", "patient_id", "scan_id", "study_rank", "modality", "sop_class", "image_type", "n_files",
    "n_slices", "rows", "columns", "pixel_spacing_mm", "slice_thickness_mm", "slice_spacing_mm", "tilt_deg",
    "reconstruction", "correction", "status", "reason", "notes",
]  # fmt: skip
SCANS_COLUMNS = [
    "scan_id", "patient_id", "label", "study_rank", "nifti", "n_slices", "slice_thickness_mm",
    "slice_spacing_mm", "pixel_spacing_mm", "rows", "columns", "series_key",
]  # fmt: skip
# Of several acceptable axial series in one study keep a soft-tissue reconstruction, then the one
# closest to 5 mm, then the one with most slices (docs/conversion.md).
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
    # Identical copies of a slice, dropped (still counted in n_files).
    dropped: list[SliceHeader] = field(default_factory=list)
    # file_key of the files of this series that lost their SeriesInstanceUID (link_unreadable_files).
    unreadable: list[str] = field(default_factory=list)

    @property
    def first(self) -> SliceHeader:
        return self.slices[0]

    @property
    def study_key(self) -> str:
        """StudyInstanceUID; a series without one is taken as a study of its own."""
        return self.first.study_uid or f"series:{self.uid}"

    @property
    def reconstruction(self) -> Reconstruction:
        """Soft tissue, bone, lung, sharp or unknown, from ConvolutionKernel, SeriesDescription, ImageType."""
        first = self.first
        return classify_reconstruction(first.convolution_kernel, first.series_description, first.image_type)

    @property
    def thickness_distance_mm(self) -> float:
        """How far SliceThickness is from the preferred 5 mm (infinite when absent)."""
        thickness = self.first.slice_thickness
        return abs(thickness - PREFERRED_THICKNESS_MM) if thickness is not None else float("inf")


def load_clinical(path: str | Path) -> pd.DataFrame:
    """The validated clinical sheet (htct.sheets); a seam so tests and other sheets can swap it."""
    from htct.sheets import load_clinical as load_sheet

    return load_sheet(path)


def load_cohort(dicom_dir: Path, clinical_csv: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The clinical sheet and DICOM PatientID -> its ``patient_id``, once the DICOM folder is found.

    Raises:
        HTCTInputError: ``dicom_dir`` missing, unreadable clinical sheet.
    """
    if not dicom_dir.is_dir():
        raise HTCTInputError(f"DICOM folder not found: {dicom_dir} (set data: dicom_dir in config.yaml)")
    clinical = load_clinical(clinical_csv)
    patient_of = dict(
        zip(clinical["dicom_patient_id"].astype(str), clinical["patient_id"].astype(str), strict=True)
    )
    return clinical, patient_of


def no_image_error(dicom_dir: Path, n_files: int) -> HTCTInputError:
    """The error for a tree in which none of the ``n_files`` files is a usable DICOM image."""
    return HTCTInputError(
        f"no DICOM image found in {dicom_dir} ({n_files} files looked at); point data: dicom_dir "
        "in config.yaml at the folder holding the exported DICOM files"
    )


# --- Stage 1: discover -----------------------------------------------------------------------------


def _read_headers(paths: list[Path], dicom_dir: Path, threads: int) -> list[SliceHeader]:
    # Header parsing is pure Python (GIL-bound): processes, not threads, and only for large trees.
    if threads > 1 and len(paths) >= HEADER_PROCESS_THRESHOLD:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(read_header, paths, [dicom_dir] * len(paths), chunksize=64))
    return [read_header(path, dicom_dir) for path in paths]


def discover_series(
    dicom_dir: Path, threads: int = 1, files: list[Path] | None = None, require_image: bool = True
) -> list[Series]:
    """Every file under ``dicom_dir`` (or only ``files``), found by content and grouped by SeriesInstanceUID.

    A file that is not a usable DICOM image is a one-file ``Series`` with an empty ``uid`` (its QC
    row gives the problem).

    Args:
        dicom_dir: root of the tree.
        threads: processes for the header reading (large trees only).
        files: the files to read, in ``iter_files`` order (one conversion shard's: :func:`htct.dicom.sharding.plan_shards`);
            None reads the whole tree.
        require_image: refuse a tree without any DICOM image (a shard's files may hold none).

    Raises:
        HTCTInputError: no DICOM image among the files (``require_image``).
    """
    headers = _read_headers(list(iter_files(dicom_dir)) if files is None else files, dicom_dir, threads)
    if require_image and not any(not h.problem for h in headers):
        raise no_image_error(dicom_dir, len(headers))
    series: list[Series] = []
    by_uid: dict[str, list[SliceHeader]] = defaultdict(list)
    for header in headers:
        if not header.problem and not header.series_uid:
            header.problem = "DICOM file without SeriesInstanceUID"
        if header.problem:
            series.append(Series(uid="", slices=[header]))
        else:
            by_uid[header.series_uid].append(header)
    return series + [Series(uid=uid, slices=slices) for uid, slices in by_uid.items()]


# --- Stage 2: series rules, patients, studies --------------------------------------------------------


def classify_images(images: Iterable[Series], patient_of: dict[str, str], **rules: object) -> None:
    """Apply the series rules (``classify_series``, keyword ``rules``) and match each series to a patient."""
    for s in images:
        s.patient_id = patient_of.get(s.first.patient_id, "")
        s.slices, s.dropped, copies = drop_identical_copies(s.slices)
        s.verdict = classify_series(s.slices, **rules)  # type: ignore[arg-type]
        if copies:
            s.verdict.notes.insert(0, copies)
        if not s.verdict.reason and not s.patient_id:
            s.verdict.reason = "patient not in the clinical sheet (PatientID matches no dicom_patient_id)"


def link_unreadable_files(series: Iterable[Series], patient_of: dict[str, str]) -> None:
    """Give a DICOM file that lost its SeriesInstanceUID (a copy cut short) its patient and series.

    The patient comes from the file's own PatientID when it was read before the cut, else from the
    image series in the file's folder; the series is the one image series of its folder (of its
    study, when the StudyInstanceUID was read). That series' row then says it lost a slice, and the
    file's row says where it belongs, so a scan kept with 27 of 28 slices is not silently shorter.
    """
    series = list(series)
    in_folder: dict[Path, list[Series]] = defaultdict(list)
    for s in series:
        if s.uid:
            for folder in {header.path.parent for header in s.slices}:
                in_folder[folder].append(s)
    for broken in series:
        header = broken.first
        if not _is_linkable(broken):
            continue
        siblings = [
            s for s in in_folder.get(header.path.parent, [])
            if not header.study_uid or s.first.study_uid == header.study_uid
        ]  # fmt: skip
        own_patient = patient_of.get(header.patient_id, "") if header.patient_id else ""
        if own_patient:
            siblings = [s for s in siblings if s.patient_id == own_patient]
        patients = {s.patient_id for s in siblings}
        broken.patient_id = own_patient or (patients.pop() if len(patients) == 1 else "")
        cut = (
            f"file of {header.file_size} bytes that ends before its pixel data"
            if header.ends_in_header
            else ""
        )
        images = [s for s in siblings if s.verdict.geometry is not None]  # axial CT candidates first
        owner = images[0] if len(images) == 1 else siblings[0] if len(siblings) == 1 else None
        if owner is None:
            if cut:
                header.problem += f" ({cut}: a truncated copy?)"
            continue
        owner.unreadable.append(file_key(header.relative_path))
        header.problem += (
            f" ({cut or 'unreadable'}: a slice of series {series_key(owner.uid)} in its folder?)"
        )


def _is_linkable(s: Series) -> bool:
    """A file that lost its SeriesInstanceUID or whose header is unreadable (``link_unreadable_files``)."""
    return not s.uid and is_linkable_problem(s.first.problem)


def is_linkable_problem(problem: str) -> bool:
    """The problem of a file that ``link_unreadable_files`` ties to a series of its folder."""
    return problem == "DICOM file without SeriesInstanceUID" or problem.startswith("unreadable DICOM header")


def rank_studies(images: Iterable[Series]) -> None:
    """Rank each patient's studies (StudyInstanceUID) by StudyDate, StudyTime, then UID (1 = earliest).

    A study is ranked once, at its earliest StudyDate/StudyTime over its series (a scout may carry a
    later StudyTime than the axial series of its study). Every study of the patient found in the
    tree counts, kept or not, so a scan_id does not change when a QC rule or another series changes.
    """
    images = [s for s in images if s.patient_id]
    start: dict[tuple[str, str], tuple[str, str]] = {}
    for s in images:
        key, when = (s.patient_id, s.study_key), (s.first.study_date, s.first.study_time)
        start[key] = min(start.get(key, when), when)
    ranks: dict[tuple[str, str], int] = {}
    n_ranked: dict[str, int] = defaultdict(int)
    for key in sorted(start, key=lambda key: (key[0], *start[key], key[1])):
        n_ranked[key[0]] += 1
        ranks[key] = n_ranked[key[0]]
    for s in images:
        s.study_rank = ranks[(s.patient_id, s.study_key)]


# --- Stage 3: one series per study, converted ------------------------------------------------------


def preference(s: Series) -> tuple[int, float, int, str]:
    """Sort key of a study's acceptable series: soft tissue first, then closest to 5 mm, most slices."""
    return (s.reconstruction.rank, s.thickness_distance_mm, -len(s.slices), series_key(s.uid))


def why_kept(kept: Series, other: Series) -> str:
    """Why ``kept`` is the study's scan rather than ``other`` (which comes after it in ``preference``)."""
    if kept.reconstruction.rank != other.reconstruction.rank:
        return f"{kept.reconstruction.describe()} preferred over this {other.reconstruction.describe()}"
    if kept.thickness_distance_mm != other.thickness_distance_mm:
        return (
            f"its {kept.first.slice_thickness:g} mm slices are closer to {PREFERRED_THICKNESS_MM:g} mm "
            f"than these {other.first.slice_thickness or 0:g} mm"
        )
    if len(kept.slices) != len(other.slices):
        return f"more slices ({len(kept.slices)} vs {len(other.slices)})"
    return "same reconstruction, thickness and slice count: the lower series_key"


def _convert_one(slices: list[SliceHeader], verdict: SeriesVerdict, path: Path, threads: int) -> str:
    """Build and write one volume; returns "" or the QC reason when its pixels cannot be read."""
    try:
        volume = build_hu_volume(slices, verdict.geometry, threads, verdict.correction)  # type: ignore[arg-type]
    except PixelDataError as error:
        return str(error)
    write_nifti(volume, path, threads=threads)
    return ""


def _convert_batch(jobs: list[Series], threads: int) -> list[str]:
    """Convert series in parallel processes (several jobs) or with threads inside one (a single job)."""
    if threads > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(_convert_one, [s.slices for s in jobs], [s.verdict for s in jobs],
                                 [Path(s.nifti) for s in jobs], [1] * len(jobs)))  # fmt: skip
    return [_convert_one(s.slices, s.verdict, Path(s.nifti), threads) for s in jobs]


def convert_studies(images: Iterable[Series], nifti_dir: Path, threads: int = 1) -> None:
    """Convert one series per study, the first by ``preference``; when its pixels turn out unreadable,
    the next one. Sets ``scan_id``/``nifti`` on the kept series and the reason on the others."""
    candidates: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for s in images:
        if not s.verdict.reason:
            candidates[(s.patient_id, s.study_key)].append(s)
    pending = {study: sorted(group, key=preference) for study, group in candidates.items()}
    while pending:
        picks = {study: group[0] for study, group in pending.items()}
        for s in picks.values():
            s.scan_id = f"{s.patient_id}_scan{s.study_rank}"
            s.nifti = str(nifti_dir / f"{s.scan_id}.nii.gz")
        reasons = _convert_batch(list(picks.values()), threads)
        next_pending = {}
        for (study, pick), reason in zip(picks.items(), reasons, strict=True):
            if reason:
                pick.verdict.reason, pick.scan_id, pick.nifti = reason, "", ""
                if len(pending[study]) > 1:
                    next_pending[study] = pending[study][1:]
                continue
            for other in pending[study][1:]:
                other.verdict.reason = (
                    f"duplicate series in study (kept series {series_key(pick.uid)}: {why_kept(pick, other)})"
                )
        pending = next_pending


# --- Stage 4: QC and scans tables ------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _qc_row(s: Series) -> dict:
    first = s.first
    geometry = s.verdict.geometry
    if first.problem:  # a file that is not a DICOM image: one row per file, keyed by its path hash
        return {
            "series_key": file_key(first.relative_path), "patient_id": s.patient_id, "n_files": 1,
            "status": "excluded", "reason": first.problem,
        }  # fmt: skip
    spacing = first.pixel_spacing
    notes = list(s.verdict.notes)
    if s.unreadable:
        n_lost = len(s.unreadable)
        notes.insert(
            0,
            f"{len(s.slices)} of {len(s.slices) + n_lost} slices: {n_lost} unreadable "
            f"file{'s' if n_lost > 1 else ''} (series_key {', '.join(s.unreadable)} in this table)",
        )
    return {
        "series_key": series_key(s.uid),
        "patient_id": s.patient_id,
        "scan_id": s.scan_id,
        "study_rank": s.study_rank,
        "modality": first.modality,
        "sop_class": sop_class_name(first.sop_class_uid),
        "image_type": "\\".join(first.image_type),
        "n_files": len(s.slices) + len(s.dropped),
        "n_slices": len(s.slices) if geometry is not None else None,
        "rows": first.rows,
        "columns": first.columns,
        "pixel_spacing_mm": _fmt(spacing[0]) if spacing else None,
        "slice_thickness_mm": _fmt(first.slice_thickness),
        "slice_spacing_mm": _fmt(geometry.slice_spacing_mm) if geometry is not None else None,
        "tilt_deg": _fmt(geometry.tilt_deg, 2) if geometry is not None else None,
        "reconstruction": s.reconstruction.describe() if geometry is not None else "",  # axial CT candidates
        "correction": s.verdict.correction.describe() if s.verdict.correction is not None else "",
        "status": "kept" if s.scan_id and not s.verdict.reason else "excluded",
        "reason": s.verdict.reason,
        "notes": "; ".join(notes),
    }


def qc_table(series: Iterable[Series]) -> pd.DataFrame:
    """results/qc/series.tsv: one row per series and per unusable file, kept rows first."""
    qc = pd.DataFrame([_qc_row(s) for s in series], columns=QC_COLUMNS)
    for column in ("study_rank", "n_files", "n_slices", "rows", "columns"):
        qc[column] = qc[column].astype("Int64")
    return sort_qc(qc)


def sort_qc(qc: pd.DataFrame) -> pd.DataFrame:
    """Kept rows first, then by patient (rows without one last), study rank and series_key.

    Sorts on what the TSV shows (an empty patient_id and a missing one are alike), so that the
    gather of sharded QC tables (:func:`gather_conversion`), which reads them back as text, puts the
    rows in the same order as one job.
    """
    keys = pd.DataFrame(
        {
            "status": qc["status"].astype(str),
            "patient_id": qc["patient_id"].astype("string").replace("", pd.NA),
            "study_rank": pd.to_numeric(qc["study_rank"], errors="coerce"),
            "series_key": qc["series_key"].astype(str),
        },
        index=qc.index,
    )
    order = keys.sort_values(list(keys.columns), ascending=[False, True, True, True], na_position="last",
                             kind="stable").index  # fmt: skip
    return qc.loc[order]


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


def scans_table(kept: Iterable[Series], label_of: dict[str, int]) -> pd.DataFrame:
    """results/qc/scans.tsv: the kept scans, by patient and study rank."""
    rows = [
        {"scan_id": s.scan_id, "patient_id": s.patient_id, "label": label_of[s.patient_id],
         "study_rank": s.study_rank, "nifti": s.nifti, **_grid_columns(s), "series_key": series_key(s.uid)}
        for s in kept
    ]  # fmt: skip
    return sort_scans(pd.DataFrame(rows, columns=SCANS_COLUMNS))


def sort_scans(scans: pd.DataFrame) -> pd.DataFrame:
    """By patient, then study rank (numeric also when read back as text)."""
    keys = pd.DataFrame(
        {"patient_id": scans["patient_id"].astype(str), "study_rank": pd.to_numeric(scans["study_rank"])},
        index=scans.index,
    )
    return scans.loc[keys.sort_values(["patient_id", "study_rank"], kind="stable").index]


def write_tables(
    series: list[Series], clinical: pd.DataFrame, qc_tsv: str | Path, scans_tsv: str | Path
) -> pd.DataFrame:
    """Write the QC and scans tables, log the patients left without a scan; returns the scans table."""
    qc = qc_table(series)
    kept = [s for s in series if s.scan_id]
    label_of = dict(zip(clinical["patient_id"].astype(str), clinical["label"].astype(int), strict=True))
    scans = scans_table(kept, label_of)
    for path, table in ((qc_tsv, qc), (scans_tsv, scans)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, sep="\t", index=False)
    without_scan = sorted(set(clinical["patient_id"].astype(str)) - {s.patient_id for s in kept})
    if without_scan:
        log.warning(
            "%d patient(s) in the clinical sheet have no kept scan (see %s): %s",
            len(without_scan), qc_tsv, ", ".join(without_scan[:20]) + (" ..." if len(without_scan) > 20 else ""),
        )  # fmt: skip
    n_excluded = int((qc["status"] == "excluded").sum())
    log.info("converted %d scan(s); %d series/files excluded (see %s)", len(kept), n_excluded, qc_tsv)
    return scans.reset_index(drop=True)


def _check_policies(**policies: str) -> None:
    allowed = {"gantry_tilt": GANTRY_TILT_POLICIES, "uneven_spacing": UNEVEN_SPACING_POLICIES}
    for key, value in policies.items():
        if value not in allowed[key]:
            raise HTCTInputError(
                f"convert.{key}: {value!r} is not one of {', '.join(allowed[key])}; fix config.yaml"
            )


# --- The whole tree --------------------------------------------------------------------------------


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
    shard: int = 0,
    n_shards: int = 1,
    shard_index: str | Path | None = None,
) -> pd.DataFrame:
    """Convert every acceptable axial CT study under ``dicom_dir`` to ``{nifti_dir}/{scan_id}.nii.gz``.

    The stages: ``discover_series`` (files recognised by content in any layout, grouped by
    SeriesInstanceUID); ``classify_images`` (the rules of ``htct.dicom.series.classify_series``:
    scout, secondary capture, non-CT, too few slices, duplicate or missing slices, gantry tilt and
    uneven spacing when refused, inconsistent matrix, missing codec; then the patient match);
    ``rank_studies``; ``convert_studies`` (one scan per study: a soft-tissue reconstruction first,
    then thickness closest to 5 mm, then most slices; tilted or unevenly spaced series resampled);
    ``write_tables``.

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
        shard: with ``n_shards`` > 1, read and convert only the files of this shard (the
            ``shard_index`` of :func:`htct.dicom.sharding.plan_shards`: its patients' files, and on shard 0 the files of
            no patient) and write their QC rows; :func:`gather_conversion` joins the shards.
        n_shards: number of shards of the cohort's patients.
        shard_index: the shard index (needed with ``n_shards`` > 1); the tree is listed, by name
            only, to find the shard's files.

    Returns:
        The scans table (also written to ``scans_tsv``).

    Raises:
        HTCTInputError: ``dicom_dir`` missing or without any DICOM file, unreadable clinical sheet,
            unsupported option, a missing or stale shard index.

    Example:
        >>> scans = convert_tree("dicom/", "clinical.csv", "results/nifti", "results/qc/series.tsv",
        ...                      "results/qc/scans.tsv", threads=2)  # doctest: +SKIP
    """
    dicom_dir, nifti_dir = Path(dicom_dir), Path(nifti_dir)
    _check_policies(gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing)
    clinical, patient_of = load_cohort(dicom_dir, clinical_csv)
    files = None
    if n_shards > 1:
        files, clinical = _shard_part(dicom_dir, clinical, shard, n_shards, shard_index)
    # A shard's files are whole units of the one-job run (plan_shards), so the rules below decide for
    # them exactly what one job decides.
    series = discover_series(dicom_dir, threads, files, require_image=files is None)
    nifti_dir.mkdir(parents=True, exist_ok=True)  # also when nothing is kept: Snakemake expects the folder
    images = [s for s in series if s.uid]
    classify_images(images, patient_of, min_slices=min_slices, gantry_tilt=gantry_tilt,
                    max_spacing_deviation_mm=max_spacing_deviation_mm, uneven_spacing=uneven_spacing)  # fmt: skip
    link_unreadable_files(series, patient_of)
    rank_studies(images)
    convert_studies(images, nifti_dir, threads)
    return write_tables(series, clinical, qc_tsv, scans_tsv)


def _shard_part(
    dicom_dir: Path, clinical: pd.DataFrame, shard: int, n_shards: int, shard_index: str | Path | None
) -> tuple[list[Path], pd.DataFrame]:
    """The files (in listing order) and clinical rows of one shard, from the shard index.

    The tree is listed by name only; just the shard's own paths are kept (a shard's memory follows
    its files, not the tree's).
    """
    if shard_index is None:
        raise HTCTInputError(
            f"conversion in {n_shards} shards needs the shard index (htct.dicom.sharding.plan_shards: "
            "rule index_dicom)"
        )
    index = read_shard_index(shard_index, shard, n_shards)
    file_shards, listing, files = index["file_shards"], ListingDigest(), []
    for path in iter_files(dicom_dir):
        position = listing.n_files
        listing.update(path.relative_to(dicom_dir).as_posix())
        if position < len(file_shards) and file_shards[position] == shard:
            files.append(path)
    check_listing(index, shard_index, listing)
    patients = {patient for patient, s in index["patient_shards"].items() if s == shard}
    clinical = clinical[clinical["patient_id"].astype(str).isin(patients)]
    log.info(
        "shard %d of %d: %d patient(s), %d of the tree's %d files read",
        shard, n_shards, len(clinical), len(files), listing.n_files,
    )  # fmt: skip
    return files, clinical


def gather_conversion(
    shard_nifti_dirs: Sequence[str | Path],
    shard_qc_tsvs: Sequence[str | Path],
    shard_scans_tsvs: Sequence[str | Path],
    nifti_dir: str | Path,
    qc_tsv: str | Path,
    scans_tsv: str | Path,
) -> pd.DataFrame:
    """Join the outputs of sharded :func:`convert_tree` runs into those of one run.

    The QC and scans tables are read as text (every value exactly as the shard wrote it), joined and
    sorted as one run sorts them; the NIfTIs are hard-linked (copied across filesystems) into
    ``nifti_dir`` and the scans table's ``nifti`` column points there. The result is byte for byte
    what one job writes (tests/test_shards.py).

    Args:
        shard_nifti_dirs: each shard's NIfTI folder.
        shard_qc_tsvs: each shard's series.tsv.
        shard_scans_tsvs: each shard's scans.tsv.
        nifti_dir: the gathered NIfTI folder (created).
        qc_tsv: the gathered QC table.
        scans_tsv: the gathered scans table.

    Returns:
        The gathered scans table.

    Raises:
        HTCTInputError: a scan in two shards, or a shard's NIfTI missing.
    """
    text = {"dtype": str, "keep_default_na": False, "sep": "\t"}
    qc = sort_qc(pd.concat([pd.read_csv(path, **text) for path in shard_qc_tsvs], ignore_index=True))
    parts = []
    for folder, path in zip(shard_nifti_dirs, shard_scans_tsvs, strict=True):
        part = pd.read_csv(path, **text)
        part["source"] = [str(Path(folder) / Path(nifti).name) for nifti in part["nifti"]]
        parts.append(part)
    scans = sort_scans(pd.concat(parts, ignore_index=True))
    if scans["scan_id"].duplicated().any():
        raise HTCTInputError(
            f"scan {scans['scan_id'][scans['scan_id'].duplicated()].iloc[0]} is in two shards"
        )
    nifti_dir = Path(nifti_dir)
    nifti_dir.mkdir(parents=True, exist_ok=True)
    scans["nifti"] = [str(nifti_dir / Path(source).name) for source in scans["source"]]
    for source, target in zip(scans["source"], scans["nifti"], strict=True):
        if not Path(source).is_file():
            raise HTCTInputError(f"{source} (a shard's scan) not found; re-run the convert_dicom_shard jobs")
        Path(target).unlink(missing_ok=True)
        try:
            os.link(source, target)  # no second copy of the cohort on disk
        except OSError:
            shutil.copyfile(source, target)
    scans = scans.drop(columns="source")
    for path, table in ((qc_tsv, qc), (scans_tsv, scans)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, sep="\t", index=False)
    log.info("gathered %d scan(s) and %d QC row(s) from %d shard(s)", len(scans), len(qc), len(shard_qc_tsvs))
    return scans.reset_index(drop=True)
