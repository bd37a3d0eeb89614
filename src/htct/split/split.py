"""Patient-level, label-stratified splits, saved once and reused (nnU-Net's splits_final idea).

Every scan of a patient goes to the part of its patient, so no patient is ever in two parts. The
paper's own counts (437 training + 61 test patients > 474 patients) suggest its split was drawn per
scan; `check_split` makes the workflow fail rather than repeat that leak.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from htct.errors import HTCTInputError

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")
PATIENT_QC_COLUMNS = ["patient_id", "n_scans_found", "n_scans_kept", "status", "reason"]


def make_split(
    clinical: pd.DataFrame,
    scans: pd.DataFrame,
    seed: int = 2026,
    test_fraction: float = 0.1,
    val_fraction: float = 0.15,
    k_folds: int = 0,
) -> pd.DataFrame:
    """Split the patients that have at least one kept scan, stratified by label.

    The test part is `test_fraction` of the patients (the paper's 9:1). The rest is split into
    training and validation patients: with `k_folds` < 2 a single validation part of `val_fraction`
    (column `fold` = -1); with `k_folds` >= 2 every non-test patient is in part `train` and column
    `fold` (0..k-1) says in which fold it is the validation patient.

    Args:
        clinical: the clinical sheet (patient_id, label, ...).
        scans: the kept scans (scan_id, patient_id, ...), from the conversion stage.
        seed: random seed of the draw.
        test_fraction: share of patients in the test part.
        val_fraction: share of the non-test patients held out for validation (single split).
        k_folds: number of cross-validation folds over the non-test patients; 0 for a single split.

    A small cohort is split as far as it allows (the smallest: 2 patients of each label): a part too
    small to hold every label is enlarged to one patient per label; where a label has too few
    patients left to stratify, the validation part (or the folds) is drawn without stratification.
    Each such step is logged (the split rule's log).

    Returns:
        One row per patient: patient_id, label, part, fold, n_scans; sorted by patient_id.

    Raises:
        HTCTInputError: fewer than 2 labels, or a label with fewer than 2 patients with a kept scan
            (the test and the training part could not both hold it); k folds with fewer patients.
    """
    n_scans = scans.groupby("patient_id").size().rename("n_scans")
    patients = clinical.loc[clinical["patient_id"].isin(n_scans.index), ["patient_id", "label"]]
    patients = patients.sort_values("patient_id").reset_index(drop=True)
    counts = patients["label"].value_counts().sort_index()
    if len(counts) < 2 or counts.min() < 2:
        raise HTCTInputError(
            f"cannot stratify the split: patients with a kept scan per label {counts.to_dict()}; "
            "each label needs at least 2 (one for the test part, one for training); "
            "results/qc/patients.tsv says which patients have a kept scan and why the others do not"
        )
    rest, test = _hold_out(patients, test_fraction, seed, "test")
    split = patients.set_index("patient_id")
    split["part"] = "train"
    split["fold"] = -1
    split.loc[test["patient_id"], "part"] = "test"
    if k_folds >= 2:
        for fold, val_rows in enumerate(_fold_rows(rest, k_folds, seed)):
            split.loc[rest["patient_id"].iloc[val_rows], "fold"] = fold
    else:
        _, val = _hold_out(rest, val_fraction, seed, "val")
        split.loc[val["patient_id"], "part"] = "val"
    split = split.join(n_scans).reset_index()
    return split[["patient_id", "label", "part", "fold", "n_scans"]]


def _hold_out(
    patients: pd.DataFrame, fraction: float, seed: int, part: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw `fraction` of `patients` (at least one, leaving at least one) as `part`, stratified when it can be.

    scikit-learn's stratified draw needs every label twice and at least one patient per label on
    both sides; a part too small for that is enlarged to one patient per label when the rest keeps
    one too, otherwise it is drawn at random (said in the log, with the labels the parts lack).
    """
    counts = patients["label"].value_counts().sort_index()
    n, n_labels = len(patients), len(counts)
    n_held = min(max(math.ceil(fraction * n), 1), n - 1)
    if counts.min() >= 2 and n >= 2 * n_labels:
        if n_held < n_labels or n - n_held < n_labels:
            enlarged = min(max(n_held, n_labels), n - n_labels)
            log.info(
                "%s part: %d patient(s) instead of %d (%.0f%% of %d), so that it and the rest hold every label",
                part, enlarged, n_held, 100 * fraction, n,
            )  # fmt: skip
            n_held = enlarged
        rest, held = train_test_split(
            patients, test_size=n_held, stratify=patients["label"], random_state=seed
        )
        return rest, held
    rest, held = train_test_split(patients, test_size=n_held, random_state=seed)
    log.warning(
        "%s part drawn without stratification: patients per label %s are too few to stratify (each "
        "label needs 2); %d patient(s) drawn at random; labels missing from the %s part: %s, from the %s: %s",
        part, counts.to_dict(), n_held, part, _missing_labels(held, counts),
        "training part" if part == "val" else "rest", _missing_labels(rest, counts),
    )  # fmt: skip
    return rest, held


def _missing_labels(part: pd.DataFrame, counts: pd.Series) -> str:
    missing = sorted(set(counts.index) - set(part["label"]))
    return ", ".join(str(label) for label in missing) or "none"


def _fold_rows(rest: pd.DataFrame, k_folds: int, seed: int) -> list[np.ndarray]:
    """The validation rows of each of `k_folds` folds: stratified, or (every label with fewer patients
    than folds) unstratified, said in the log."""
    counts = rest["label"].value_counts().sort_index()
    if len(rest) < k_folds:
        raise HTCTInputError(
            f"split.k_folds {k_folds}: only {len(rest)} non-test patient(s) with a kept scan (per label "
            f"{counts.to_dict()}); use fewer folds or more patients"
        )
    if (counts >= k_folds).any():  # scikit-learn stratifies (warning about a rarer label) from here
        folds = StratifiedKFold(n_splits=k_folds, shuffle=True, random_state=seed).split(rest, rest["label"])
    else:
        log.warning(
            "folds drawn without stratification: non-test patients per label %s, all fewer than the %d folds",
            counts.to_dict(), k_folds,
        )  # fmt: skip
        folds = KFold(n_splits=k_folds, shuffle=True, random_state=seed).split(rest)
    return [val_rows for _, val_rows in folds]


def check_split(split: pd.DataFrame, scans: pd.DataFrame | None = None) -> None:
    """Fail if any patient (or any scan, through its patient) appears in two parts.

    Args:
        split: one row per patient with columns patient_id, part (and fold).
        scans: optional scan table (scan_id, patient_id) to check that every scan maps to one part.

    Raises:
        HTCTInputError: a patient in two parts or twice, an unknown part, a scan whose patient is not
            in the split, or an empty part.
    """
    unknown = sorted(set(split["part"]) - set(PARTS))
    if unknown:
        raise HTCTInputError(f"split: unknown part(s) {unknown}; allowed: {', '.join(PARTS)}")
    parts_per_patient = split.groupby("patient_id")["part"].nunique()
    leaked = parts_per_patient[parts_per_patient > 1]
    if len(leaked):
        raise HTCTInputError(
            f"split leak: patient {leaked.index[0]} is in several parts "
            f"({', '.join(sorted(split.loc[split['patient_id'] == leaked.index[0], 'part']))}); "
            f"{len(leaked)} patient(s) affected. All scans of a patient must be in one part."
        )
    duplicated = split["patient_id"][split["patient_id"].duplicated()]
    if len(duplicated):
        raise HTCTInputError(f"split: patient {duplicated.iloc[0]} is listed more than once")
    for part in ("test",) + (("val",) if (split["fold"] < 0).all() else ()):
        if not (split["part"] == part).any():
            raise HTCTInputError(f"split: the {part} part is empty; use more patients or a larger fraction")
    if scans is not None:
        orphans = sorted(set(scans["patient_id"]) - set(split["patient_id"]))
        if orphans:
            raise HTCTInputError(
                f"split: scan(s) of patient {orphans[0]} have no part ({len(orphans)} patient(s)); "
                "redraw the split or add the patient to the split file"
            )


def scans_by_part(split: pd.DataFrame, scans: pd.DataFrame) -> pd.DataFrame:
    """Attach each scan to the part (and fold) of its patient.

    Args:
        split: the patient split.
        scans: scan table with scan_id and patient_id.

    Returns:
        `scans` with the columns part and fold added, in the order of `scans`.
    """
    merged = scans.merge(split[["patient_id", "part", "fold"]], on="patient_id", how="left", validate="m:1")
    return merged.assign(fold=merged["fold"].astype(np.int64))


def patient_status(
    clinical: pd.DataFrame, qc: pd.DataFrame, scans: pd.DataFrame, split: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per patient of the clinical sheet: how many scans were found and kept, and why not.

    A patient without a usable scan would otherwise just be missing from the split; this table (the
    workflow's ``results/qc/patients.tsv``) makes every such patient visible with a reason.

    Args:
        clinical: the clinical sheet (patient_id, ...).
        qc: the converter's QC table (``results/qc/series.tsv``: patient_id, study_rank, ...).
        scans: the kept scans (scan_id, patient_id).
        split: a fixed patient split (config split.file: patient_id, part), or None when the split is
            drawn (it then holds every patient with a kept scan); the table does not wait for the
            split, so it is written even when a cohort is too small to split.

    Returns:
        patient_id, n_scans_found (studies found in the DICOM tree, kept or not), n_scans_kept,
        status (included | excluded) and reason ("" when included); in the clinical sheet's order.
    """
    found = qc.dropna(subset=["patient_id", "study_rank"])
    found = found[found["patient_id"].astype(str) != ""]
    n_found = found.groupby(found["patient_id"].astype(str))["study_rank"].nunique()
    n_kept = scans.groupby(scans["patient_id"].astype(str)).size()
    in_split = set((split if split is not None else scans)["patient_id"].astype(str))
    rows = []
    for patient_id in clinical["patient_id"].astype(str):
        found_here, kept_here = int(n_found.get(patient_id, 0)), int(n_kept.get(patient_id, 0))
        if patient_id in in_split:
            reason = ""
        elif found_here == 0:
            reason = "no DICOM series whose PatientID matches its dicom_patient_id (check the export and the sheet)"
        elif kept_here == 0:
            reason = f"none of its {found_here} scan(s) passed QC (reasons in results/qc/series.tsv)"
        else:
            reason = "not in the split file (config split.file)"
        rows.append(
            {
                "patient_id": patient_id,
                "n_scans_found": found_here,
                "n_scans_kept": kept_here,
                "status": "excluded" if reason else "included",
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=PATIENT_QC_COLUMNS)


def make_image_split(
    scans: pd.DataFrame,
    seed: int = 2026,
    test_fraction: float = 0.1,
    val_fraction: float = 0.15,
) -> pd.DataFrame:
    """The paper's probable split, for the leakage sensitivity analysis only: by scan, not by patient.

    Every scan is drawn into a part on its own (stratified by label), so a patient's scans can sit on
    both sides of the split, as the paper's 437 training + 61 test > 474 patients suggests. Never the
    workflow's split: `check_split` refuses it; only the sensitivity analysis (rules/repeats.smk)
    trains on it, beside the patient-level split on the same seeds.

    Args:
        scans: the kept scans (scan_id, patient_id, label).
        seed: random seed of the draw.
        test_fraction: share of scans in the test part.
        val_fraction: share of the non-test scans held out for validation.

    Returns:
        One row per scan: scan_id, patient_id, label, part, fold (-1), n_scans (1); sorted by scan_id.

    Raises:
        HTCTInputError: too few scans of a class to stratify.
    """
    table = scans[["scan_id", "patient_id", "label"]].sort_values("scan_id").reset_index(drop=True)
    counts = table["label"].value_counts()
    if len(counts) < 2 or counts.min() < 3:
        raise HTCTInputError(
            f"cannot stratify the image-level split: scans per label {counts.to_dict()}; "
            "each label needs at least 3 kept scans"
        )
    rest, test = train_test_split(table, test_size=test_fraction, stratify=table["label"], random_state=seed)
    _, val = train_test_split(rest, test_size=val_fraction, stratify=rest["label"], random_state=seed)
    split = table.set_index("scan_id")
    split["part"] = "train"
    split.loc[test["scan_id"], "part"] = "test"
    split.loc[val["scan_id"], "part"] = "val"
    split = split.reset_index().assign(fold=-1, n_scans=1)
    return split[["scan_id", "patient_id", "label", "part", "fold", "n_scans"]]


def patients_in_several_parts(split: pd.DataFrame) -> int:
    """Patients whose scans sit in more than one part (0 for every patient-level split)."""
    return int((split.groupby("patient_id")["part"].nunique() > 1).sum())
