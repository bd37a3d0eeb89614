"""Shards of patients: how the convert and preprocess stages split a cohort into independent jobs.

A shard is a contiguous block of the cohort's patients in sorted ``patient_id`` order, the blocks
as even as possible (sizes differ by at most one). Every series, scan and array row of a patient
lands in the patient's shard, so a shard can be converted or preprocessed without the others, and
the gather steps (:func:`htct.dicom.gather_conversion`, :func:`htct.preprocess.gather_arrays`)
restore exactly the outputs of one job: the assignment never changes what is computed per patient,
only which job computes it. Shards are numbered from 0.

Conversion finds a tree's files by content, so which patient a file holds is known only from its
header: a small job (:func:`htct.dicom.plan_shards`) reads every header once and writes the *shard
index* (:func:`write_shard_index`), the shard of every file in the tree's sorted listing; each
conversion shard then lists the tree (names only), checks that it is the listing the index was made
from (:func:`check_listing`), and reads its own files alone. The index holds no path and no DICOM
value: file numbers, shard numbers, the pseudonymous ``patient_id`` and a SHA-256 of the listing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from htct.errors import HTCTInputError


def check_shard(shard: int, n_shards: int) -> None:
    """Refuse a shard number outside ``0 .. n_shards - 1``.

    Raises:
        HTCTInputError: bad ``n_shards`` or ``shard``.
    """
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise HTCTInputError(f"shard {shard} of {n_shards}: shards are numbered 0 to {n_shards - 1}")


def shard_of_patients(patient_ids: Iterable[str], n_shards: int) -> dict[str, int]:
    """The shard of every patient: contiguous, even blocks of the sorted unique ``patient_ids``.

    Args:
        patient_ids: the cohort's patients (repeats are ignored).
        n_shards: number of shards; with more shards than patients some shards are empty.

    Returns:
        patient_id -> shard number.

    Example:
        >>> shard_of_patients(["p3", "p1", "p2", "p4", "p5"], 2)
        {'p1': 0, 'p2': 0, 'p3': 0, 'p4': 1, 'p5': 1}
    """
    patients = sorted({str(patient) for patient in patient_ids})
    # Patient i of n goes to shard floor(i * n_shards / n): block sizes differ by at most one.
    return {patient: i * n_shards // len(patients) for i, patient in enumerate(patients)}


class ListingDigest:
    """Count and SHA-256 of a tree's listing (relative paths with '/', in listing order), fed one path
    at a time so that no list of the whole tree is kept: what the shard index was made from."""

    def __init__(self) -> None:
        self.n_files = 0
        self._sha256 = hashlib.sha256()

    def update(self, relative_path: str) -> None:
        self.n_files += 1
        self._sha256.update(relative_path.encode("utf-8", "surrogateescape") + b"\0")

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


def write_shard_index(
    path: str | Path,
    n_shards: int,
    listing: ListingDigest,
    file_shards: Sequence[int],
    patient_shards: dict[str, int],
) -> dict:
    """Write the shard index of a DICOM tree (JSON).

    Args:
        path: the index file.
        n_shards: number of shards.
        listing: the digest of the tree's listing.
        file_shards: the shard of each file of the listing, in listing order.
        patient_shards: the shard of every patient of the clinical sheet (its rows in the QC tables).

    Returns:
        The index as written.
    """
    if len(file_shards) != listing.n_files:
        raise ValueError("one shard per file of the listing")
    files_per_shard = [0] * n_shards
    for shard in file_shards:
        files_per_shard[shard] += 1
    index = {
        "n_shards": n_shards,
        "n_files": listing.n_files,
        "listing_sha256": listing.hexdigest(),
        "files_per_shard": files_per_shard,
        "patients_per_shard": [
            sum(1 for s in patient_shards.values() if s == shard) for shard in range(n_shards)
        ],
        "patient_shards": dict(sorted(patient_shards.items())),
        "file_shards": list(map(int, file_shards)),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(index) + "\n")
    return index


def read_shard_index(index_path: str | Path, shard: int, n_shards: int) -> dict:
    """The shard index, checked against the shard and shard count the workflow asks for.

    Raises:
        HTCTInputError: bad shard, or an index of another shard count.
    """
    check_shard(shard, n_shards)
    index = json.loads(Path(index_path).read_text())
    if index["n_shards"] != n_shards:
        raise HTCTInputError(
            f"{index_path} splits the tree into {index['n_shards']} shards, not {n_shards}; "
            "delete it and re-run the workflow"
        )
    return index


def check_listing(index: dict, index_path: str | Path, listing: ListingDigest) -> None:
    """Refuse a tree whose listing is not the one the shard index was made from.

    Raises:
        HTCTInputError: a file added, removed or renamed since the index.
    """
    if index["n_files"] != listing.n_files or index["listing_sha256"] != listing.hexdigest():
        raise HTCTInputError(
            f"the DICOM tree changed since {index_path} was made ({index['n_files']} files then, "
            f"{listing.n_files} now); delete it and re-run the workflow"
        )


def patients_per_shard(n_patients: int, n_shards: int) -> int:
    """The largest shard's number of patients (what a shard job's resources must cover)."""
    return math.ceil(n_patients / max(1, n_shards))


def shard_runtime(
    n_patients: int, n_shards: int, minutes_per_patient: float, whole_cohort_minutes_per_patient: float = 0.0
) -> int:
    """The runtime (minutes, sbatch --time) to ask for one shard job, so that none runs past it.

    Ten minutes of start-up, the part every shard does for the whole cohort (none in the workflow's
    shards today: a conversion shard lists the tree by name only and reads its own files' headers),
    and twice the measured time of the largest shard's patients (a slower or busier node).

    Args:
        n_patients: patients of the cohort.
        n_shards: number of shards.
        minutes_per_patient: measured minutes per patient of the sharded work, on one job's threads.
        whole_cohort_minutes_per_patient: measured minutes per patient of what each shard does for all.

    Returns:
        Whole minutes.
    """
    largest = patients_per_shard(n_patients, n_shards)
    return 10 + math.ceil(whole_cohort_minutes_per_patient * n_patients + 2 * minutes_per_patient * largest)


def shard_mem_mb(n_patients: int, n_shards: int, base_mb: int, mb_per_patient: float) -> int:
    """The memory (MB, sbatch --mem) to ask for one shard job whose memory grows with its patients.

    Args:
        n_patients: patients of the cohort.
        n_shards: number of shards (1 for a job over the whole cohort).
        base_mb: the job's memory without any patient (interpreter, libraries, worker processes).
        mb_per_patient: measured growth per patient of the largest shard.

    Returns:
        Whole MB.

    Example:
        >>> shard_mem_mb(10_000, 20, 1000, 5.3)
        3650
    """
    return base_mb + math.ceil(mb_per_patient * patients_per_shard(n_patients, n_shards))
