"""Figures of the evaluation (fig. 1-3, supp. fig. 4, calibration, decision curves, agreement,
training curves in :mod:`htct.figures.training`) and the Grad-CAM
attention analysis. Every function writes ``{stem}.pdf`` and ``{stem}.png`` and returns the Figure.

The attention analysis (Grad-CAM, needs torch and captum) lives in :mod:`htct.figures.attention`
and is not imported here, so the plotting steps run in an environment without torch.
"""

from htct.figures.performance import (
    RocBand,
    agreement_figure,
    calibration_figure,
    decision_curve_figure,
    fig2_confusion,
    roc_band,
    supp_fig4_roc,
)
from htct.figures.pipeline import RuleGraph, fig1_pipeline, parse_rulegraph, topological_levels
from htct.figures.style import SYNTHETIC_FIGURE_NOTE, figure_texts, save_figure

__all__ = [
    "SYNTHETIC_FIGURE_NOTE",
    "RocBand",
    "RuleGraph",
    "agreement_figure",
    "calibration_figure",
    "decision_curve_figure",
    "fig1_pipeline",
    "fig2_confusion",
    "figure_texts",
    "parse_rulegraph",
    "roc_band",
    "save_figure",
    "supp_fig4_roc",
    "topological_levels",
]
