"""Models of the clinical sheet's variables: the clinical-only logistic model and CTNet's late fusion
with the clinical variables (issue 24; docs/models.md, "Clinical variables").

Neither needs arrays or torch: both read prediction tables and the clinical sheet, and write
prediction tables in the format of ``results/predictions/{model}.tsv``.
"""

from htct.clinical.model import (
    CLINICAL_LABEL,
    FUSION_LABEL,
    MEDICATION_REFERENCE,
    ClinicalModel,
    FusionModel,
    clinical_design,
    fit_clinical,
    fit_fusion,
    fusion_predictions,
)

__all__ = [
    "CLINICAL_LABEL",
    "FUSION_LABEL",
    "MEDICATION_REFERENCE",
    "ClinicalModel",
    "FusionModel",
    "clinical_design",
    "fit_clinical",
    "fit_fusion",
    "fusion_predictions",
]
