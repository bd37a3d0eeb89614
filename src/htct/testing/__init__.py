"""Fixtures for the tests and benchmarks, never used by the workflow: one DICOM writer
(:func:`htct.testing.dicom.write_ct_series`) with its head phantoms, and toy training arrays.

The synthetic cohort (:mod:`htct.synth`) has its own writer because it writes what a hospital
export holds (identity, study dates, acquisition fields); this one writes what a converter's edge
cases need (tilt, kernels, transfer syntaxes, faults) and nothing else.
"""

from htct.testing.arrays import write_toy_arrays
from htct.testing.dicom import head_phantom, toy_head_hu, write_ct_series, write_toy_ct_series

__all__ = ["head_phantom", "toy_head_hu", "write_ct_series", "write_toy_arrays", "write_toy_ct_series"]
