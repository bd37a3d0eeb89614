"""Shards of patients: how the convert and preprocess stages split a cohort into independent jobs.

A shard is a contiguous block of the cohort's patients in sorted ``patient_id`` order, the blocks
as even as possible (sizes differ by at most one). Every series, scan and array row of a patient
lands in the patient's shard, so a shard can be converted or preprocessed without the others, and
the gather steps (:func:`htct.dicom.gather_conversion`, :func:`htct.preprocess.gather_arrays`)
restore exactly the outputs of one job: the assignment never changes what is computed per patient,
only which job computes it. Shards are numbered from 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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


def patients_per_shard(n_patients: int, n_shards: int) -> int:
    """The largest shard's number of patients (what a shard job's resources must cover)."""
    return math.ceil(n_patients / max(1, n_shards))


def shard_runtime(
    n_patients: int, n_shards: int, minutes_per_patient: float, whole_cohort_minutes_per_patient: float = 0.0
) -> int:
    """The runtime (minutes, sbatch --time) to ask for one shard job, so that none runs past it.

    Ten minutes of start-up, the part every shard does for the whole cohort (conversion reads every
    header), and twice the measured time of the largest shard's patients (a slower or busier node).

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
