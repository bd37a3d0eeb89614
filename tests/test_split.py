"""Patient-level split: no overlap, stratified, reproducible; the leak check fails the DAG."""

import numpy as np
import pandas as pd
import pytest

from htct.errors import HTCTInputError
from htct.split import check_split, make_split, scans_by_part


def _cohort(n_patients: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    clinical = pd.DataFrame(
        {
            "patient_id": [f"P{i:04d}" for i in range(n_patients)],
            "label": (rng.random(n_patients) < 0.4).astype(int),
        }
    )
    scans = pd.DataFrame(
        [
            {"scan_id": f"{pid}_scan{k}", "patient_id": pid}
            for pid in clinical["patient_id"]
            for k in range(1, rng.integers(1, 4) + 1)
        ]
    )
    return clinical, scans


def test_split_has_no_patient_or_scan_overlap():
    clinical, scans = _cohort()
    split = make_split(clinical, scans, seed=1)
    check_split(split, scans)
    assert split["patient_id"].is_unique
    parts = scans_by_part(split, scans)
    assert parts.groupby("patient_id")["part"].nunique().max() == 1
    assert set(parts["part"]) == {"train", "val", "test"}
    assert len(parts) == len(scans)


def test_split_is_stratified_and_sized():
    clinical, scans = _cohort(400)
    split = make_split(clinical, scans, seed=3, test_fraction=0.1, val_fraction=0.15)
    prevalence = clinical["label"].mean()
    for part, rows in split.groupby("part"):
        assert abs(rows["label"].mean() - prevalence) < 0.03, part
    assert (split["part"] == "test").sum() == 40
    assert (split["part"] == "val").sum() == 54  # ceil(0.15 * 360)


def test_split_is_reproducible_and_seeded():
    clinical, scans = _cohort()
    a = make_split(clinical, scans, seed=5)
    b = make_split(clinical, scans, seed=5)
    c = make_split(clinical, scans, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a["part"].equals(c["part"])


def test_patients_without_scans_are_not_split():
    clinical, scans = _cohort()
    scans = scans[scans["patient_id"] != "P0000"]
    split = make_split(clinical, scans, seed=1)
    assert "P0000" not in set(split["patient_id"])


def test_kfold_assigns_every_non_test_patient_one_fold():
    clinical, scans = _cohort()
    split = make_split(clinical, scans, seed=1, k_folds=5)
    check_split(split, scans)
    rest = split[split["part"] != "test"]
    assert set(rest["part"]) == {"train"}
    assert sorted(rest["fold"].unique()) == [0, 1, 2, 3, 4]
    assert (split.loc[split["part"] == "test", "fold"] == -1).all()


def test_check_split_fails_on_leak():
    clinical, scans = _cohort(50)
    split = make_split(clinical, scans, seed=1)
    leaked_patient = split.loc[split["part"] == "test", "patient_id"].iloc[0]
    leak = pd.concat([split, split[split["patient_id"] == leaked_patient].assign(part="train")])
    with pytest.raises(HTCTInputError, match=f"split leak: patient {leaked_patient}"):
        check_split(leak, scans)


def test_check_split_fails_on_scan_without_part():
    clinical, scans = _cohort(50)
    split = make_split(clinical, scans, seed=1)
    orphan = pd.concat([scans, pd.DataFrame([{"scan_id": "X_scan1", "patient_id": "X"}])])
    with pytest.raises(HTCTInputError, match="patient X"):
        check_split(split, orphan)


def test_cannot_stratify_single_class():
    clinical, scans = _cohort(20)
    clinical["label"] = 0
    with pytest.raises(HTCTInputError, match="cannot stratify"):
        make_split(clinical, scans)
