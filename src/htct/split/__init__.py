"""Patient-level, label-stratified splits into training, validation and test parts."""

from htct.split.split import PATIENT_QC_COLUMNS, check_split, make_split, patient_status, scans_by_part

__all__ = ["PATIENT_QC_COLUMNS", "check_split", "make_split", "patient_status", "scans_by_part"]
