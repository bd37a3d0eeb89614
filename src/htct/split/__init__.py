"""Patient-level, label-stratified splits into training, validation and test parts."""

from htct.split.split import check_split, make_split, scans_by_part

__all__ = ["check_split", "make_split", "scans_by_part"]
