"""htct.synth: a synthetic cohort of real DICOM head CTs with a known risk model for HT.

``generate_cohort`` writes the DICOM tree, the clinical and reader sheets and the truth files;
``sample_cohort`` draws the same tables without rendering images. See docs/synthetic_cohort.md.
"""

from htct.synth.cohort import SyntheticCohort, sample_cohort
from htct.synth.generate import generate_cohort, write_dicom

__all__ = ["SyntheticCohort", "generate_cohort", "sample_cohort", "write_dicom"]
