"""Patient-level, label-stratified splits into training, validation and test parts (and, for the
leakage sensitivity analysis only, the paper's probable image-level split)."""

from htct.split.split import (
    PATIENT_QC_COLUMNS,
    check_split,
    make_image_split,
    make_split,
    patient_status,
    patients_in_several_parts,
    scans_by_part,
)

__all__ = [
    "PATIENT_QC_COLUMNS",
    "check_split",
    "make_image_split",
    "make_split",
    "patient_status",
    "patients_in_several_parts",
    "scans_by_part",
]
