"""DICOM to NIfTI conversion with quality control: every series kept or excluded with a reason.

Entry points: `convert_tree` (called by scripts/convert_dicom.py, once per shard of patients),
`plan_shards` (scripts/index_dicom.py: which files each shard reads) and `gather_conversion`
(scripts/gather_conversion.py). See docs/conversion.md.
"""

from htct.dicom.convert import QC_COLUMNS, SCANS_COLUMNS, convert_tree, gather_conversion
from htct.dicom.discover import file_key, series_key
from htct.dicom.series import classify_series, measure_geometry
from htct.dicom.sharding import plan_shards
from htct.dicom.volume import build_hu_volume, dicom_affine, write_nifti

__all__ = [
    "QC_COLUMNS",
    "SCANS_COLUMNS",
    "build_hu_volume",
    "classify_series",
    "convert_tree",
    "dicom_affine",
    "file_key",
    "gather_conversion",
    "measure_geometry",
    "plan_shards",
    "series_key",
    "write_nifti",
]
