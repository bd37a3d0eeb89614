"""Input sheets (clinical, readers): loading and validation with one-line, actionable errors.

The column contract is schemas/clinical.schema.yaml and schemas/readers.schema.yaml (documented in
config/README.md). The JSON schemas check each row; this module adds the checks across rows that a
schema cannot express (duplicates, coverage of the test scans).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from htct.errors import HTCTInputError

MEDICATIONS = ("antiplatelet", "anticoagulant", "thrombolytic", "none", "not_available")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
TEXT_COLUMNS = {"patient_id": str, "dicom_patient_id": str, "scan_id": str, "reader": str}
# Separators a spreadsheet may write instead of the comma (Excel in many European locales: ';').
OTHER_SEPARATORS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _schema(name: str) -> dict:
    """Load a sheet schema from the workflow's schemas/ folder (the single source of the column contract)."""
    return yaml.safe_load((SCHEMA_DIR / f"{name}.schema.yaml").read_text())


def _read_csv(path: str | Path, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise HTCTInputError(f"{what} sheet not found: {path} (set its path in config.yaml under data:)")
    _refuse_other_separator(path, what)
    try:
        return pd.read_csv(path, dtype=TEXT_COLUMNS, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise HTCTInputError(f"{what} sheet {path} is not a readable CSV: {error}") from error


def _refuse_other_separator(path: Path, what: str) -> None:
    """Name the separator of a sheet whose header line is separated by something other than commas.

    Such a sheet is refused rather than read with its separator: the spreadsheets that write ';'
    also write decimal commas (age "67,5"), which a guessed format would read wrongly in silence.
    """
    with open(path, encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    if "," in header:
        return
    found = [name for separator, name in OTHER_SEPARATORS.items() if separator in header]
    if found:
        raise HTCTInputError(
            f"{what} sheet {path} looks {found[0]}-separated (its header line has no comma); the sheet "
            "must be comma-separated: save it again as CSV with ',' as the field separator and '.' as "
            "the decimal point"
        )


def _parse_numbers(sheet: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Turn the numeric text of `columns` into numbers in place, leaving any other text for the
    schema to name (with its row) instead of making the whole column text."""
    for column in columns:
        if column in sheet:
            numbers = pd.to_numeric(sheet[column], errors="coerce")
            sheet[column] = (
                sheet[column].where(numbers.isna() & sheet[column].notna(), numbers).astype(object)
            )


def _validate_rows(sheet: pd.DataFrame, schema: dict, path: Path, what: str, key: str) -> None:
    """Check every row against the schema; report the first problem as one line naming row and column."""
    missing = [column for column in schema.get("required", []) if column not in sheet.columns]
    if missing:
        raise HTCTInputError(
            f"{what} sheet {path} lacks the column(s) {', '.join(missing)}; "
            f"required columns: {', '.join(schema['required'])} (see config/README.md)"
        )
    validator = jsonschema.Draft202012Validator(schema)
    for line, record in enumerate(sheet.to_dict("records"), start=2):
        row = {column: value for column, value in record.items() if not pd.isna(value)}
        # pandas reads an integer column holding a gap as float; 1.0 is a valid label
        if isinstance(row.get("label"), float) and row["label"].is_integer():
            row["label"] = int(row["label"])
        error = jsonschema.exceptions.best_match(validator.iter_errors(row))
        if error is not None and error.validator == "required":
            column = error.message.split("'")[1]
            raise HTCTInputError(
                f"{what} sheet {path}, line {line} ({key} {row.get(key, '?')}): column {column} is empty"
            )
        if error is not None:
            column = (
                error.path[0]
                if error.path
                else (error.message.split("'")[1] if "'" in error.message else "?")
            )
            raise HTCTInputError(
                f"{what} sheet {path}, line {line} ({key} {row.get(key, '?')}): column {column}: {error.message}"
            )


def load_clinical(path: str | Path) -> pd.DataFrame:
    """Load and validate the clinical sheet (one row per patient).

    Args:
        path: CSV with columns patient_id, label, age, sex, medication and optionally dicom_patient_id.

    Returns:
        The sheet with `label` as int and `dicom_patient_id` filled from `patient_id` when absent.

    Raises:
        HTCTInputError: missing file or column, a value outside its schema, a duplicate patient.
    """
    path = Path(path)
    sheet = _read_csv(path, "clinical")
    _parse_numbers(sheet, ("label", "age"))
    _validate_rows(sheet, _schema("clinical"), path, "clinical", "patient_id")
    sheet["label"] = sheet["label"].astype(int)
    sheet["age"] = sheet["age"].astype(float)
    for column in ("patient_id", "dicom_patient_id"):
        if column in sheet:
            duplicated = sheet[column][sheet[column].duplicated()].unique()
            if len(duplicated):
                raise HTCTInputError(
                    f"clinical sheet {path}: {column} {duplicated[0]} appears more than once; "
                    "give each patient exactly one row"
                )
    if "dicom_patient_id" not in sheet:
        sheet["dicom_patient_id"] = sheet["patient_id"]
    sheet["dicom_patient_id"] = sheet["dicom_patient_id"].fillna(sheet["patient_id"])
    return sheet.reset_index(drop=True)


def load_readers(path: str | Path, test_scans: Iterable[str] | None = None) -> pd.DataFrame:
    """Load and validate the reader-study sheet (long format: scan_id, reader, p_ht).

    Args:
        path: CSV with one row per reader and scan.
        test_scans: scan IDs every reader must have read; when given, the sheet is restricted to them.

    Returns:
        The sheet (restricted to `test_scans` when given), readers in order of first appearance.

    Raises:
        HTCTInputError: missing file or column, p_ht outside [0, 1], a duplicate (reader, scan),
            a test scan some reader did not read.
    """
    path = Path(path)
    sheet = _read_csv(path, "readers")
    _parse_numbers(sheet, ("p_ht",))
    _validate_rows(sheet, _schema("readers"), path, "readers", "scan_id")
    sheet["p_ht"] = sheet["p_ht"].astype(float)
    duplicated = sheet[sheet.duplicated(["reader", "scan_id"])]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise HTCTInputError(
            f"readers sheet {path}: reader {first['reader']!r} rated scan {first['scan_id']} more than once"
        )
    if test_scans is not None:
        test_scans = list(test_scans)
        for reader, rows in sheet.groupby("reader", sort=False):
            missing = sorted(set(test_scans) - set(rows["scan_id"]))
            if missing:
                raise HTCTInputError(
                    f"readers sheet {path}: reader {reader!r} has no rating for test scan {missing[0]}"
                    f" ({len(missing)} test scan(s) missing); every reader must rate every test scan"
                )
        sheet = sheet[sheet["scan_id"].isin(test_scans)]
    return sheet.reset_index(drop=True)
