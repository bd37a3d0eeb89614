"""Patient-level split: no overlap, stratified, reproducible; the leak check fails the DAG."""

import logging

import numpy as np
import pandas as pd
import pytest

from htct.errors import HTCTInputError
from htct.split import check_split, make_split, patient_status, scans_by_part


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


def _labelled(labels: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    clinical = pd.DataFrame({"patient_id": [f"P{i}" for i in range(len(labels))], "label": labels})
    return clinical, pd.DataFrame(
        {"scan_id": clinical["patient_id"] + "_scan1", "patient_id": clinical["patient_id"]}
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_four_patients_two_per_label_are_split_into_three_parts(seed, caplog):
    clinical, scans = _labelled([0, 0, 1, 1])
    with caplog.at_level(logging.INFO, logger="htct.split.split"):
        split = make_split(clinical, scans, seed=seed, test_fraction=0.1, val_fraction=0.15)
    check_split(split, scans)  # every part non-empty, no patient twice
    parts = split.groupby("part")["label"].apply(sorted).to_dict()
    assert parts["test"] == [0, 1]  # enlarged from 1 to one patient per label: the test AUC exists
    assert len(parts["val"]) == len(parts["train"]) == 1
    assert "test part: 2 patient(s) instead of 1" in caplog.text
    assert "val part drawn without stratification: patients per label {0: 1, 1: 1}" in caplog.text


def test_small_cohort_stratifies_every_part_when_it_can(caplog):
    clinical, scans = _labelled([0, 0, 0, 1, 1, 1])
    with caplog.at_level(logging.INFO, logger="htct.split.split"):
        split = make_split(clinical, scans, seed=4, test_fraction=0.1, val_fraction=0.15)
    assert split.groupby("part")["label"].apply(sorted).to_dict() == {
        "test": [0, 1], "train": [0, 1], "val": [0, 1],
    }  # fmt: skip
    assert "without stratification" not in caplog.text


@pytest.mark.parametrize(("labels", "counts"), [([0, 0, 0, 1], "{0: 3, 1: 1}"), ([1, 1, 1], "{1: 3}")])
def test_too_small_cohort_names_the_label_counts(labels, counts):
    clinical, scans = _labelled(labels)
    with pytest.raises(HTCTInputError) as error:
        make_split(clinical, scans)
    assert f"patients with a kept scan per label {counts}" in str(error.value)
    assert "\n" not in str(error.value)


def test_kfold_on_a_small_cohort_falls_back_to_unstratified_folds(caplog):
    clinical, scans = _labelled([0, 0, 0, 1, 1, 1])
    with caplog.at_level(logging.INFO, logger="htct.split.split"):
        split = make_split(clinical, scans, seed=0, k_folds=3)
    check_split(split, scans)
    folds = split.loc[split["part"] != "test", "fold"]
    assert len(folds) == 4 and set(folds) == {0, 1, 2}  # every fold validates at least one patient
    assert "folds drawn without stratification: non-test patients per label {0: 2, 1: 2}" in caplog.text
    with pytest.raises(HTCTInputError, match="split.k_folds 5: only 4 non-test patient"):
        make_split(clinical, scans, seed=0, k_folds=5)


def test_patient_table_needs_no_split():
    clinical, scans = _labelled([0, 1, 0])
    qc = pd.DataFrame({"patient_id": ["P0", "P1", "P2"], "study_rank": [1, 1, 1]})
    kept = scans[scans["patient_id"] != "P2"]  # P2's only scan failed QC
    drawn = patient_status(clinical, qc, kept).set_index("patient_id")
    assert drawn["status"].to_dict() == {"P0": "included", "P1": "included", "P2": "excluded"}
    assert drawn.loc["P2", "reason"].startswith("none of its 1 scan(s) passed QC")
    fixed = patient_status(clinical, qc, kept, kept[kept["patient_id"] == "P0"]).set_index("patient_id")
    assert fixed.loc["P1", "reason"] == "not in the split file (config split.file)"
