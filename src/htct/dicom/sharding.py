"""Which files of a DICOM tree each conversion shard reads (rule index_dicom, ``shards.convert`` > 1).

Files are recognised by content in any layout, so the patient a file holds is known only from its
header: :func:`plan_shards` reads every header once, keeps four small values of each (folder, series,
PatientID, whether it is a broken file), and writes the shard index (:mod:`htct.shards`). Each
``convert_dicom_shard`` job then reads only its own files (:func:`htct.dicom.convert_tree` with
``shard_index``).

The units of :func:`assign_shards` are what one job decides together: a series with its patient's
other series (study ranks), and a file that lost its SeriesInstanceUID or whose header is unreadable
with its patient and the series of its folder (:func:`htct.dicom.convert.link_unreadable_files`).
A shard holds whole units, so it decides for them what one job decides, and the gathered outputs are
the same bytes (tests/test_shards.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from itertools import islice, repeat
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from htct.dicom.convert import is_linkable_problem, load_cohort, no_image_error
from htct.dicom.discover import SliceHeader, iter_files, read_header
from htct.shards import ListingDigest, shard_of_patients, write_shard_index

log = logging.getLogger(__name__)
HEADER_CHUNK = 8192  # files whose headers are read at a time


class FileUnit(NamedTuple):
    """What the shard assignment needs of one file (about 160 bytes held, against 5 kB for its header)."""

    folder: int  # number of the file's folder
    series_uid: str  # "" for a file that is not a usable image (interned: one string per series)
    patient_id: str  # the header's PatientID ("" when not read)
    linkable: bool  # a broken file that one job ties to a series of its folder


def assign_shards(
    files: Sequence[FileUnit], patient_of: dict[str, str], patients: Iterable[str], n_shards: int
) -> tuple[list[int], dict[str, int]]:
    """The shard of every file of a tree, and of every patient of the clinical sheet.

    A patient's series go to the patient's shard (:func:`htct.shards.shard_of_patients`); a series
    belongs to the patient of its first file, as in one job. A broken file goes with its own patient
    (when its PatientID was read) and with every image series of its folder; patients so tied (a
    folder of several patients' series beside a broken file: rare) share the first one's shard.
    Series and files of no patient, tied to none, go to shard 0.

    Args:
        files: each file of the tree, in listing order.
        patient_of: DICOM PatientID -> the clinical sheet's ``patient_id``.
        patients: every ``patient_id`` of the clinical sheet.
        n_shards: number of shards.

    Returns:
        The shard of each of ``files``, and patient_id -> shard for every patient.
    """
    base = shard_of_patients(patients, n_shards)
    nodes: dict[tuple[str, str | int], int] = {}

    def node(kind: str, key: str | int) -> int:
        return nodes.setdefault((kind, key), len(nodes))

    def patient(dicom_patient_id: str) -> str:
        return patient_of.get(dicom_patient_id, "") if dicom_patient_id else ""

    first_patient: dict[str, str] = {}
    in_folder: dict[int, set[str]] = defaultdict(set)
    for file in files:
        if file.series_uid:
            first_patient.setdefault(file.series_uid, file.patient_id)
            in_folder[file.folder].add(file.series_uid)
    edges = []
    for uid, dicom_patient_id in first_patient.items():
        own = node("series", uid)
        if patient(dicom_patient_id):
            edges.append((own, node("patient", patient(dicom_patient_id))))
    for i, file in enumerate(files):
        if file.linkable:
            own = node("file", i)
            if patient(file.patient_id):
                edges.append((own, node("patient", patient(file.patient_id))))
            edges += [(own, node("series", uid)) for uid in in_folder.get(file.folder, ())]
    rows, columns = zip(*edges, strict=True) if edges else ((), ())
    graph = coo_matrix((np.ones(len(edges)), (rows, columns)), shape=(len(nodes), len(nodes)))
    _, component = connected_components(graph, directed=False)
    shard_of_component: dict[int, int] = {}
    for (kind, key), k in nodes.items():
        if kind == "patient":
            c = int(component[k])
            shard_of_component[c] = min(shard_of_component.get(c, n_shards), base[str(key)])

    def shard_of(kind: str, key: str | int) -> int:
        return shard_of_component.get(int(component[nodes[(kind, key)]]), 0)

    file_shards = [
        shard_of("series", file.series_uid)
        if file.series_uid
        else shard_of("file", i)
        if file.linkable
        else 0
        for i, file in enumerate(files)
    ]
    patient_shards = {
        patient_id: shard_of("patient", patient_id) if ("patient", patient_id) in nodes else shard
        for patient_id, shard in base.items()
    }
    return file_shards, patient_shards


def _headers(paths: Iterator[Path], dicom_dir: Path, threads: int) -> Iterator[SliceHeader]:
    """``read_header`` of each path, in order, a chunk of the listing at a time (never the whole tree's
    paths or headers at once)."""
    with ProcessPoolExecutor(max_workers=threads) if threads > 1 else nullcontext() as pool:
        while chunk := list(islice(paths, HEADER_CHUNK)):
            if pool is None:  # header parsing is GIL-bound: processes, not threads
                yield from (read_header(path, dicom_dir) for path in chunk)
            else:
                yield from pool.map(read_header, chunk, repeat(dicom_dir), chunksize=64)


def plan_shards(
    dicom_dir: str | Path, clinical_csv: str | Path, index_path: str | Path, n_shards: int, threads: int = 1
) -> dict:
    """Read every header of the tree once and write the shard index of its files (rule index_dicom).

    The tree is walked once, a chunk of files at a time, and only a :class:`FileUnit` of each header
    is kept, so the job's memory grows by far less than the 5 kB a file that a conversion job holds
    (docs/models.md).

    Args:
        dicom_dir: root of the DICOM tree.
        clinical_csv: clinical sheet.
        index_path: the shard index (JSON, :func:`htct.shards.write_shard_index`: no path, no DICOM value).
        n_shards: number of shards.
        threads: processes for the header reading.

    Returns:
        The index as written.

    Raises:
        HTCTInputError: ``dicom_dir`` missing or without any DICOM image, unreadable clinical sheet.
    """
    dicom_dir = Path(dicom_dir)
    clinical, patient_of = load_cohort(dicom_dir, clinical_csv)
    listing = ListingDigest()

    def listed() -> Iterator[Path]:
        for path in iter_files(dicom_dir):
            listing.update(path.relative_to(dicom_dir).as_posix())
            yield path

    folders: dict[Path, int] = {}
    strings: dict[str, str] = {}  # one string object per UID and PatientID, not one per file
    files, any_image = [], False
    for header in _headers(listed(), dicom_dir, threads):
        any_image = any_image or not header.problem  # as discover_series decides
        usable = not header.problem and bool(header.series_uid)
        files.append(
            FileUnit(
                folders.setdefault(header.path.parent, len(folders)),
                strings.setdefault(header.series_uid, header.series_uid) if usable else "",
                strings.setdefault(header.patient_id, header.patient_id),
                is_linkable_problem(
                    header.problem or ("" if usable else "DICOM file without SeriesInstanceUID")
                ),
            )
        )
    if not any_image:
        raise no_image_error(dicom_dir, len(files))
    file_shards, patient_shards = assign_shards(
        files, patient_of, clinical["patient_id"].astype(str), n_shards
    )
    index = write_shard_index(index_path, n_shards, listing, file_shards, patient_shards)
    log.info("%d files in %d shards: %s files, %s patients per shard", listing.n_files, n_shards,
             index["files_per_shard"], index["patients_per_shard"])  # fmt: skip
    return index
