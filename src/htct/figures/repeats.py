"""The spread figure: one point per repeat, the headline run and the paper's value marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from htct.figures.style import (
    DOUBLE_COLUMN_IN,
    OKABE_ITO,
    figure_style,
    legend_below,
    new_figure,
    save_figure,
)

#: (rater, metric) panels: CTNet's headline metrics, then the clinicians' mean and the oracle's AUC.
PANELS = (("auc", "AUC"), ("sensitivity", "Sensitivity"), ("f1", "F1"), ("accuracy", "Accuracy"))


def spread_figure(
    metrics: pd.DataFrame,
    spread: pd.DataFrame,
    claims: pd.DataFrame,
    model: str,
    model_label: str,
    stem: str | Path,
    synthetic: bool,
) -> list[Path]:
    """Per metric, the repeats' values of CTNet, the clinicians' mean and the oracle, one point per
    repeat (jittered), the repeats' median and 2.5-97.5 percentiles, the headline run and the paper.

    A last panel shows the repeats' CTNet-minus-clinicians'-mean AUC (the paper's main claim) with 0
    marked.

    Args:
        metrics: every repeat's metrics (repeat, rater, metric, value) of the patient-level split.
        spread: :func:`htct.paper.repeats.spread_table`.
        claims: every repeat's claims (claim_id, estimate).
        model: the model's name (rater).
        model_label: its display name.
        stem: output path without extension.
        synthetic: whether the data are the synthetic cohort.
    """
    raters = [(model, model_label), ("Average (clinician)", "Clinicians' mean"), ("oracle", "Oracle")]
    rng = np.random.default_rng(0)  # jitter only
    with figure_style():
        fig = new_figure(DOUBLE_COLUMN_IN, 2.8)
        axes = fig.subplots(1, len(PANELS) + 1)
        for ax, (metric, title) in zip(axes, PANELS, strict=False):
            for x, (rater, _) in enumerate(raters):
                values = metrics.loc[(metrics["rater"] == rater) & (metrics["metric"] == metric), "value"]
                if values.empty:
                    continue
                ax.scatter(
                    x + rng.uniform(-0.15, 0.15, len(values)),
                    values,
                    s=10,
                    color=OKABE_ITO["blue"],
                    alpha=0.7,
                )
                row = spread[(spread["rater"] == rater) & (spread["metric"] == metric)].iloc[0]
                ax.errorbar(
                    x + 0.3, row["median"], yerr=[[row["median"] - row["low"]], [row["high"] - row["median"]]],
                    fmt="o", color="black", markersize=3, capsize=2,
                )  # fmt: skip
                if np.isfinite(row["headline"]):
                    ax.hlines(row["headline"], x - 0.2, x + 0.2, color=OKABE_ITO["orange"], linewidth=1.5)
                if np.isfinite(row["paper"]):
                    ax.scatter(
                        x - 0.3, row["paper"], marker="D", s=28, color=OKABE_ITO["vermillion"], zorder=3
                    )
            ax.set_xticks(range(len(raters)), [label for _, label in raters], rotation=45, ha="right")
            ax.set_title(title)
            ax.set_xlim(-0.6, len(raters) - 0.4)
        ax = axes[-1]
        diff = claims.loc[claims["claim_id"] == "auc_vs_clinician_average", "estimate"].dropna()
        ax.scatter(rng.uniform(-0.15, 0.15, len(diff)), diff, s=10, color=OKABE_ITO["blue"], alpha=0.7)
        ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xticks([0], ["CTNet minus\nclinicians' mean"])
        ax.set_xlim(-0.6, 0.6)
        ax.set_title("AUC difference")
        handles = [
            Line2D([], [], marker="o", linestyle="", color=OKABE_ITO["blue"], label="one repeat"),
            Line2D([], [], marker="o", color="black", label="median, 2.5–97.5th percentile"),
            Line2D(
                [],
                [],
                color=OKABE_ITO["orange"],
                linewidth=1.5,
                label="headline run (configured split, seed)",
            ),
            Line2D([], [], marker="D", linestyle="", color=OKABE_ITO["vermillion"], label="the paper"),
        ]
        legend_below(fig, handles, ncols=4)
        n = metrics["repeat"].nunique()
        title = f"Spread over {n} repeats (training seeds x patient-level resampled splits)"
        return save_figure(fig, stem, title, synthetic)
