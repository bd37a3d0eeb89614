"""Evaluation statistics: metrics, patient-level bootstrap, DeLong, McNemar, agreement, calibration.

See docs/statistics.md for the definitions and their references.
"""

from htct.evaluate.agreement import cohen_kappa_matrix, fleiss_kappa, percent_agreement
from htct.evaluate.bootstrap import BootstrapResult, bootstrap_metrics, bootstrap_patient_draws
from htct.evaluate.calibration import (
    Calibration,
    brier_score,
    calibration_slope_intercept,
    calibration_table,
    decision_curve,
    net_benefit,
    net_benefit_treat_all,
)
from htct.evaluate.delong import delong_ci, delong_covariance, delong_test
from htct.evaluate.mcnemar import McNemarResult, mcnemar_test
from htct.evaluate.metrics import METRICS, auc, binary_metrics, confusion_counts
from htct.evaluate.summary import (
    agreement_tables,
    auc_table,
    evaluate_raters,
    format_ci,
    format_metrics_table,
    mcnemar_tests,
    rater_inputs,
)

__all__ = [
    "METRICS",
    "BootstrapResult",
    "Calibration",
    "McNemarResult",
    "agreement_tables",
    "auc",
    "auc_table",
    "binary_metrics",
    "bootstrap_metrics",
    "bootstrap_patient_draws",
    "brier_score",
    "calibration_slope_intercept",
    "calibration_table",
    "cohen_kappa_matrix",
    "confusion_counts",
    "decision_curve",
    "delong_ci",
    "delong_covariance",
    "delong_test",
    "evaluate_raters",
    "fleiss_kappa",
    "format_ci",
    "format_metrics_table",
    "mcnemar_tests",
    "mcnemar_test",
    "net_benefit",
    "net_benefit_treat_all",
    "percent_agreement",
    "rater_inputs",
]
