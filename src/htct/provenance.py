"""What a trained model was made from: synthetic or own cohort, cohort size, code version.

Written by training into the model folder's config.yaml (`provenance:`) and read by `htct predict`,
which prints it with its research-use notice, so that a model copied to a reading-room machine still
says what it was trained on.
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pandas as pd

import htct

PROVENANCE_VERSION = 1


def code_version(root: str | Path | None = None) -> dict[str, str | None]:
    """The htct version and, when `root` is in a git checkout, its commit (suffix -dirty if edited).

    Args:
        root: a folder of the workflow (default: this package's folder).

    Returns:
        {"htct": "0.1.0", "git": "6f01957" | "6f01957-dirty" | None}.
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parent
    version: dict[str, str | None] = {"htct": htct.__version__, "git": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            version["git"] = commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):  # no git on this machine: the htct version remains
        pass
    return version


def cohort_size(scans: pd.DataFrame) -> dict[str, int]:
    """Patients and scans a model saw, from the training scans table (patient_id, label, part).

    Returns:
        n_patients, n_scans, n_patients_ht (label 1) and n_patients_{train,val,test}.
    """
    patients = scans.drop_duplicates("patient_id")
    size = {
        "n_patients": int(len(patients)),
        "n_scans": int(len(scans)),
        "n_patients_ht": int((patients["label"].astype(int) == 1).sum()),
    }
    for part in ("train", "val", "test"):
        size[f"n_patients_{part}"] = int((patients["part"] == part).sum())
    return size


def training_provenance(synthetic: bool | None, scans: pd.DataFrame, root: str | Path | None = None) -> dict:
    """The `provenance:` entry of a model folder's config.yaml.

    Args:
        synthetic: whether the cohort is the workflow's synthetic one (config data.synthetic); None
            when the caller does not know (training outside the workflow).
        scans: the scans the model was trained, validated and tested on (patient_id, label, part).
        root: the workflow folder, for its git commit.

    Returns:
        {"version", "synthetic", "cohort": cohort_size(...), "code": code_version(...), "trained_utc"}.
    """
    return {
        "version": PROVENANCE_VERSION,
        "synthetic": None if synthetic is None else bool(synthetic),
        "cohort": cohort_size(scans),
        "code": code_version(root),
        "trained_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
