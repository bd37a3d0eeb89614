"""Input sheets: valid ones load, bad ones fail with one line naming the file, row and column."""

import pandas as pd
import pytest

from htct.errors import HTCTInputError
from htct.sheets import load_clinical, load_readers

GOOD = {
    "patient_id": ["HT0001", "HT0002"],
    "dicom_patient_id": ["00012345", "00067890"],
    "label": [1, 0],
    "age": [70, 61.5],
    "sex": ["M", "F"],
    "medication": ["thrombolytic", "not_available"],
}


def _write(tmp_path, columns, name="clinical.csv"):
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_clinical_loads_and_keeps_ids_as_text(tmp_path):
    sheet = load_clinical(_write(tmp_path, GOOD))
    assert list(sheet["dicom_patient_id"]) == ["00012345", "00067890"]  # leading zeros kept
    assert sheet["label"].tolist() == [1, 0]


def test_clinical_without_dicom_ids_uses_patient_id(tmp_path):
    columns = {k: v for k, v in GOOD.items() if k != "dicom_patient_id"}
    assert load_clinical(_write(tmp_path, columns))["dicom_patient_id"].tolist() == ["HT0001", "HT0002"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"label": [1, "yes"]},
            r"line 3 \(patient_id HT0002\): column label: 'yes' is not of type 'integer'",
        ),
        ({"label": [1, 2]}, r"column label: 2 is not one of \[0, 1\]"),
        ({"medication": ["aspirin", "none"]}, r"line 2 .*column medication: 'aspirin' is not one of"),
        ({"age": [70, None]}, r"line 3 .*column age is empty"),
        ({"age": [70, 130]}, r"column age: 130"),
        ({"patient_id": ["HT0001", "HT0001"]}, r"patient_id HT0001 appears more than once"),
        ({"patient_id": ["HT 1", "HT0002"]}, r"column patient_id: 'HT 1' does not match"),
    ],
)
def test_clinical_errors_are_one_line(tmp_path, change, message):
    with pytest.raises(HTCTInputError, match=message) as error:
        load_clinical(_write(tmp_path, GOOD | change))
    assert "\n" not in str(error.value)
    assert "clinical.csv" in str(error.value)


def test_clinical_missing_column_and_file(tmp_path):
    columns = {k: v for k, v in GOOD.items() if k != "sex"}
    with pytest.raises(HTCTInputError, match="lacks the column"):
        load_clinical(_write(tmp_path, columns))
    with pytest.raises(HTCTInputError, match="not found"):
        load_clinical(tmp_path / "absent.csv")


def test_readers_coverage_of_test_scans(tmp_path):
    readers = {
        "scan_id": ["A_scan1", "B_scan1", "A_scan1"],
        "reader": ["Clinician 1", "Clinician 1", "Clinician 2"],
        "p_ht": [0.2, 0.9, 0.6],
    }
    path = _write(tmp_path, readers, "readers.csv")
    assert len(load_readers(path, test_scans=["A_scan1"])) == 2
    with pytest.raises(HTCTInputError, match="reader 'Clinician 2' has no rating for test scan B_scan1"):
        load_readers(path, test_scans=["A_scan1", "B_scan1"])
    bad = _write(tmp_path, readers | {"p_ht": [0.2, 1.5, 0.6]}, "bad.csv")
    with pytest.raises(HTCTInputError, match="column p_ht: 1.5 is greater than the maximum of 1"):
        load_readers(bad)


@pytest.mark.parametrize(("separator", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_clinical_with_another_separator_names_it(tmp_path, separator, name):
    # What a spreadsheet in a European locale saves as "CSV": ';' between fields, decimal commas.
    path = tmp_path / "clinical.csv"
    path.write_text(
        separator.join(GOOD) + "\n" + separator.join(["HT0001", "00012345", "1", "67,5", "M", "none"]) + "\n"
    )
    with pytest.raises(HTCTInputError) as error:
        load_clinical(path)
    message = str(error.value)
    assert f"looks {name}-separated" in message and "must be comma-separated" in message
    assert "lacks the column" not in message and "\n" not in message
