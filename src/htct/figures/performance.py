"""Performance figures: confusion matrices (fig. 2), ROC curves with reader operating points (supp.
fig. 4), calibration, decision curves and the agreement of the raters. Statistics come from
:mod:`htct.evaluate`.

seaborn draws what is a statistical plot in its own right (the confusion and agreement heatmaps,
the predictions under the calibration curve); the curves (ROC, reliability,
net benefit) are plain matplotlib lines, where seaborn adds nothing. Legends sit outside the axes,
so they never cover a curve, a band or a reader's point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import offset_copy
from numpy.typing import ArrayLike, NDArray

from htct.evaluate import (
    auc,
    brier_score,
    calibration_slope_intercept,
    calibration_table,
    confusion_counts,
    decision_curve,
    delong_ci,
)
from htct.evaluate.bootstrap import (
    bootstrap_patient_draws,
    draws_to_counts,
    patient_codes,
    percentile_ci,
    scan_weights,
)
from htct.figures.style import (
    DOUBLE_COLUMN_IN,
    MODEL_COLOURS,
    OKABE_ITO,
    READER_MARKERS,
    SINGLE_COLUMN_IN,
    display_name,
    figure_style,
    legend_below,
    new_figure,
    save_figure,
)

CONFUSION_CMAP = "cividis"  # perceptually uniform and readable with colour-vision deficiency
READER_DODGE_PT = 5.5
"""Horizontal offset (points) between readers drawn at the same ROC operating point."""
NEAR_CONSTANT_LOGIT_SD = 0.1
"""Below this SD of logit(p) the predictions are near-constant and the calibration slope (the
coefficient of logit(p)) is not estimable: it is printed as n/a, not as a huge number."""


def _binary(values: ArrayLike, name: str) -> NDArray[np.int64]:
    array = np.asarray(values)
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1")
    return array.astype(np.int64)


def fig2_confusion(
    y_true: ArrayLike,
    calls: Mapping[str, ArrayLike],
    stem: str | Path,
    synthetic: bool,
    ncols: int = 3,
    title: str = "Figure 2. Confusion matrices of CTNet and the neurologists (test set)",
) -> Figure:
    """Grid of confusion matrices (fig. 2): counts and row percentages on one shared colour scale.

    Cells are coloured by row percentage (share of the true class), so panels compare directly;
    every rater sees the same scans, so counts share a scale too.

    Args:
        y_true: 0/1 truth per test scan.
        calls: rater name -> 0/1 HT call per scan, in panel order (CTNet first, then the readers:
            9 raters give the paper's 3 x 3 grid).
        stem: output path without extension (writes ``.pdf`` and ``.png``).
        synthetic: adds the synthetic-cohort note.
        ncols: panels per row.
        title: metadata title.

    Returns:
        The figure (already written).
    """
    truth = _binary(y_true, "y_true")
    names = list(calls)
    if not names:
        raise ValueError("calls is empty")
    import seaborn as sns

    nrows = int(np.ceil(len(names) / ncols))
    with figure_style():
        fig = new_figure(DOUBLE_COLUMN_IN, 2.05 * nrows + 0.5)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, name in zip(axes, names, strict=False):
            call = _binary(calls[name], f"calls[{name!r}]")
            if call.shape != truth.shape:
                raise ValueError(f"calls[{name!r}] has {call.size} scans but y_true has {truth.size}")
            tp, fp, tn, fn = confusion_counts(truth, call)
            counts = np.array([[tn, fp], [fn, tp]], dtype=float)  # rows: true no HT / HT
            row_total = counts.sum(axis=1, keepdims=True)
            percent = np.divide(100 * counts, row_total, out=np.zeros_like(counts), where=row_total > 0)
            cells = np.array(
                [[f"{int(counts[i, j])}\n{percent[i, j]:.1f}%" for j in range(2)] for i in range(2)]
            )
            # seaborn picks black or white text from each cell's luminance.
            sns.heatmap(
                percent,
                ax=ax,
                cmap=CONFUSION_CMAP,
                vmin=0,
                vmax=100,
                annot=cells,
                fmt="",
                annot_kws={"fontsize": 8},
                cbar=False,
                square=True,
                xticklabels=["no HT", "HT"],
                yticklabels=["no HT", "HT"],
            )
            ax.tick_params(axis="y", rotation=90)
            ax.set_xlabel("Predicted")
            ax.set_ylabel("True")
            ax.set_title(display_name(name))
        for ax in axes[len(names) :]:
            ax.set_visible(False)
        colorbar = fig.colorbar(axes[0].collections[0], ax=axes.tolist(), shrink=0.6, pad=0.02)
        colorbar.set_label("Row percentage (%)")
        colorbar.outline.set_visible(False)
        save_figure(fig, stem, title, synthetic)
    return fig


@dataclass(frozen=True)
class RocBand:
    """Pointwise band of a ROC curve: TPR quantiles on a fixed FPR grid.

    Attributes:
        model: the scores' name (the curve the band belongs to).
        fpr: FPR grid, increasing from 0 to 1.
        low: lower TPR quantile at each FPR.
        high: upper TPR quantile at each FPR.
    """

    model: str
    fpr: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]


def _interpolated_tpr(
    truth: NDArray[np.int64], score: NDArray[np.float64], weights: NDArray[np.float64], fpr_grid: NDArray
) -> NDArray[np.float64]:
    from sklearn.metrics import roc_curve

    out = np.full((weights.shape[0], fpr_grid.size), np.nan)
    for b, w in enumerate(weights):
        if w[truth == 1].sum() == 0 or w[truth == 0].sum() == 0:
            continue  # a resample without one class has no ROC curve
        fpr, tpr, _ = roc_curve(truth, score, sample_weight=w, drop_intermediate=False)
        # sklearn's "mean ROC" convention: linear interpolation, TPR 0 at FPR 0.
        out[b] = np.interp(fpr_grid, fpr, tpr)
        out[b, 0] = 0.0
    return out


def roc_band(
    y_true: ArrayLike,
    score: ArrayLike,
    patient_ids: ArrayLike,
    model: str = "ctnet",
    n_bootstrap: int = 2000,
    seed: int = 2026,
    alpha: float = 0.05,
    n_grid: int = 101,
) -> RocBand:
    """Patient-level bootstrap band of one ROC curve (pointwise percentile band of the TPR).

    The resamples are :mod:`htct.evaluate.bootstrap`'s (same patient draws for the same seed and
    patients), expressed as integer scan weights; each resample's weighted ROC curve
    (:func:`sklearn.metrics.roc_curve` with ``sample_weight``) is interpolated on a fixed FPR grid.

    Args:
        y_true: 0/1 truth per scan.
        score: predicted HT probability per scan.
        patient_ids: patient per scan (scans of one patient are resampled together).
        model: name of the scores (the curve the band is drawn around).
        n_bootstrap: number of resamples.
        seed: bootstrap seed (config ``evaluate.seed``).
        alpha: 1 - coverage of the band.
        n_grid: FPR grid points on [0, 1].

    Returns:
        A :class:`RocBand`.
    """
    truth = _binary(y_true, "y_true")
    score_array = np.asarray(score, dtype=np.float64)
    codes, patients = patient_codes(patient_ids)
    if codes.size != truth.size or score_array.size != truth.size:
        raise ValueError("y_true, score and patient_ids must have one entry per scan")
    draws = bootstrap_patient_draws(patients.size, n_bootstrap, seed)
    weights = scan_weights(draws_to_counts(draws, patients.size), codes)
    fpr_grid = np.linspace(0.0, 1.0, n_grid)
    tpr = _interpolated_tpr(truth, score_array, weights, fpr_grid)
    low, high = percentile_ci(tpr, alpha)  # NaN where no resample has both classes
    return RocBand(model=model, fpr=fpr_grid, low=low, high=high)


def _auc_label(truth: NDArray[np.int64], score: ArrayLike) -> str:
    """``AUC 0.88 (0.80–0.96)`` with DeLong's CI; without the CI when a class has < 2 scans (tiny test sets)."""
    try:
        value, low, high = delong_ci(truth, score)
    except ValueError:
        value = auc(truth, score)
        return "AUC n/a" if np.isnan(value) else f"AUC {value:.2f} (CI n/a)"
    return f"AUC {value:.2f} ({low:.2f}–{high:.2f})"


def logit_spread(probability: ArrayLike) -> float:
    """Standard deviation of logit(p) (p clipped as in the calibration fit): how much the
    predictions vary on the scale the calibration slope is fitted on."""
    from htct.evaluate.calibration import PROBABILITY_CLIP

    clipped = np.clip(np.asarray(probability, dtype=float), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    return float(np.std(np.log(clipped / (1 - clipped))))


def _slope_intercept_label(truth: NDArray[np.int64], probability: ArrayLike) -> str:
    """Calibration slope and intercept, or ``n/a`` where the logistic fit is undefined: one class,
    perfect separation (common on tiny test sets) or, for the slope alone, near-constant
    predictions (SD of logit(p) below :data:`NEAR_CONSTANT_LOGIT_SD`: the slope would be the
    ratio of two near-zero spreads, e.g. "slope -116.27" for a model that predicts 0.50 for all)."""
    import warnings

    import statsmodels.api  # noqa: F401  (its import-time warning filters must not land in our context)
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    unavailable = "slope n/a, intercept n/a"
    if truth.min() == truth.max():
        return unavailable
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = calibration_slope_intercept(truth, probability)
        except (ValueError, np.linalg.LinAlgError, ArithmeticError):
            return unavailable
    separated = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    if not np.isfinite(fit.intercept):
        return unavailable
    intercept = f"intercept {fit.intercept:.2f}"
    if logit_spread(probability) < NEAR_CONSTANT_LOGIT_SD:
        return f"slope n/a (near-constant predictions), {intercept}"
    if separated or not np.isfinite(fit.slope):
        return unavailable
    return f"slope {fit.slope:.2f}, {intercept}"


def default_calibration_bins(n_scans: int) -> int:
    """Quantile bins of about ten scans each, between 2 and 10 bins: ten bins on 16 scans would
    zig-zag with one or two scans per point."""
    return int(np.clip(round(n_scans / 10), 2, 10))


ROC_LEGEND_TITLE = "AUC (95% CI by DeLong, scans as units;\ntables 2–3 print the patient-bootstrap CI)"
"""The ROC legend's title: which interval the legend gives, and that the tables give another."""


def supp_fig4_roc(
    y_true: ArrayLike,
    scores: Mapping[str, ArrayLike],
    reader_calls: Mapping[str, ArrayLike],
    stem: str | Path,
    synthetic: bool,
    band: RocBand | None = None,
    title: str = "Supplementary Figure 4. ROC curves of the models and the neurologists' operating points",
) -> Figure:
    """ROC curves of the models, AUC with DeLong 95% CI in the legend, readers as operating points.

    Args:
        y_true: 0/1 truth per test scan.
        scores: model name -> predicted HT probability per scan (CTNet first).
        reader_calls: reader name -> 0/1 call per scan, drawn at (1 - specificity, sensitivity).
        stem: output path without extension.
        synthetic: adds the synthetic-cohort note.
        band: optional bootstrap band (:func:`roc_band`) shaded around the curve of ``band.model``.
        title: metadata title.

    Returns:
        The figure (already written).
    """
    from sklearn.metrics import roc_curve

    truth = _binary(y_true, "y_true")
    with figure_style():
        fig = new_figure(SINGLE_COLUMN_IN + 0.4, 3.6)
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=0.8, label="_chance")
        model_handles = []
        band_handle = None
        for k, (name, score) in enumerate(scores.items()):
            colour = MODEL_COLOURS[k % len(MODEL_COLOURS)]
            label = f"{display_name(name)}: {_auc_label(truth, score)}"
            if truth.min() == truth.max():  # one class only: no ROC curve, legend entry kept
                (line,) = ax.plot([], [], color=colour, label=label)
            else:
                fpr, tpr, _ = roc_curve(truth, np.asarray(score, dtype=float))
                (line,) = ax.plot(fpr, tpr, color=colour, label=label)
            model_handles.append(line)
            if band is not None and band.model == name:
                shade = ax.fill_between(
                    band.fpr,
                    band.low,
                    band.high,
                    color=colour,
                    alpha=0.2,
                    linewidth=0,
                    label=f"{display_name(name)}: bootstrap 95% band",
                )
                band_handle = shade
        reader_handles = []
        points: dict[tuple[float, float], int] = {}
        for k, (name, call) in enumerate(reader_calls.items()):
            tp, fp, tn, fn = confusion_counts(truth, _binary(call, f"reader_calls[{name!r}]"))
            sensitivity = tp / (tp + fn) if tp + fn else np.nan
            false_positive_rate = fp / (fp + tn) if fp + tn else np.nan
            # Readers at the same operating point are drawn side by side (the first at the exact
            # point, the others READER_DODGE_PT to its right each), so none hides another.
            key = (round(float(false_positive_rate), 9), round(float(sensitivity), 9))
            shift = READER_DODGE_PT * points.get(key, 0)
            points[key] = points.get(key, 0) + 1
            (point,) = ax.plot(
                false_positive_rate,
                sensitivity,
                linestyle="none",
                marker=READER_MARKERS[k % len(READER_MARKERS)],
                markersize=4.5,
                markerfacecolor="white",
                markeredgecolor=OKABE_ITO["black"],
                markeredgewidth=0.9,
                label=display_name(name),
                transform=offset_copy(ax.transData, fig=fig, x=shift, y=0, units="points"),
                clip_on=False,
                zorder=5,  # above the curves and the band
            )
            reader_handles.append(point)
        # A margin around [0, 1] so markers at FPR 0 or sensitivity 1 are drawn whole, off the spines.
        ax.set_xlim(-0.04, 1.02)
        ax.set_ylim(-0.02, 1.04)
        ax.set_aspect("equal")
        ax.set_xlabel("1 − specificity")
        ax.set_ylabel("Sensitivity")
        legend_below(
            fig,
            model_handles + ([band_handle] if band_handle is not None else []),
            # Say which interval this is: the tables print the patient-bootstrap one, which differs.
            title=ROC_LEGEND_TITLE,
            title_fontsize=7,
            handlelength=1.5,
        )
        if reader_handles:
            # Right of the axes, top-aligned with them (not with the figure's banner).
            ax.legend(
                handles=reader_handles,
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                borderaxespad=0,
                title="Readers",
                title_fontsize=7,
                handletextpad=0.2,
            )
        save_figure(fig, stem, title, synthetic)
    return fig


def calibration_figure(
    y_true: ArrayLike,
    probabilities: Mapping[str, ArrayLike],
    stem: str | Path,
    synthetic: bool,
    n_bins: int | None = None,
    strategy: str = "quantile",
    title: str = "Calibration of the predicted HT probabilities (test set)",
) -> Figure:
    """Reliability diagram (quantile bins with Wilson 95% CIs) and the distribution of the predictions.

    Each point is one bin: mean predicted probability against the observed HT rate, with the
    bin's Wilson 95% interval; the legend gives the bins' scan counts, the Brier score, the
    calibration slope (n/a for near-constant predictions, see :func:`_slope_intercept_label`) and
    the calibration-in-the-large intercept (:func:`htct.evaluate.calibration_slope_intercept`).
    Underneath, the predictions themselves, one jittered row of scans per model (seaborn).

    Args:
        y_true: 0/1 truth per scan.
        probabilities: model name -> predicted HT probability per scan.
        stem: output path without extension.
        synthetic: adds the synthetic-cohort note.
        n_bins: bins per model (default :func:`default_calibration_bins`: about ten scans each).
        strategy: ``"quantile"`` (equal counts) or ``"uniform"`` bins.
        title: metadata title.

    Returns:
        The figure (already written).
    """
    import seaborn as sns
    from statsmodels.stats.proportion import proportion_confint

    truth = _binary(y_true, "y_true")
    bins = n_bins or default_calibration_bins(truth.size)
    colours = {name: MODEL_COLOURS[k % len(MODEL_COLOURS)] for k, name in enumerate(probabilities)}
    with figure_style():
        fig = new_figure(SINGLE_COLUMN_IN, 5.2)
        ax, hist_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 0.35 * len(probabilities)])
        (diagonal,) = ax.plot(
            [0, 1], [0, 1], color="0.6", linestyle=":", linewidth=0.8, label="Perfect calibration"
        )
        handles = [diagonal]
        for k, (name, prob) in enumerate(probabilities.items()):
            table = calibration_table(truth, prob, n_bins=bins, strategy=strategy)
            low, high = proportion_confint(
                np.round(table["observed"] * table["n"]), table["n"], alpha=0.05, method="wilson"
            )
            n_text = (
                f"{table['n'].min()}"
                if table["n"].min() == table["n"].max()
                else (f"{table['n'].min()}–{table['n'].max()}")
            )
            label = (
                f"{display_name(name)}: Brier {brier_score(truth, prob):.3f}\n"
                f"{_slope_intercept_label(truth, prob)}\n"
                f"{len(table)} {strategy} bin{'' if len(table) == 1 else 's'} of {n_text} scans"
            )
            # Models side by side within a bin (1 pt apart), so their intervals do not overprint.
            shift = offset_copy(
                ax.transData, fig=fig, x=2.0 * (k - (len(probabilities) - 1) / 2), units="points"
            )
            container = ax.errorbar(
                table["mean_predicted"],
                table["observed"],
                yerr=[table["observed"] - low, high - table["observed"]],
                color=colours[name],
                marker="o",
                markersize=3.5,
                linewidth=1.0,
                elinewidth=0.8,
                capsize=0,
                label=label,
                transform=shift,
            )
            handles.append(container)
        predictions = pd.DataFrame(
            {
                "Model": np.repeat([display_name(n) for n in probabilities], truth.size),
                "Predicted HT probability": np.concatenate(
                    [np.asarray(p, dtype=float) for p in probabilities.values()]
                ),
            }
        )
        # One row of scans per model (jittered), so no model's distribution hides another's.
        sns.stripplot(
            predictions,
            x="Predicted HT probability",
            y="Model",
            hue="Model",
            palette=[colours[n] for n in probabilities],
            jitter=0.3,
            size=2.5,
            alpha=0.7,
            linewidth=0,
            legend=False,
            ax=hist_ax,
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("Observed HT rate")
        hist_ax.set_xlabel("Predicted HT probability")
        hist_ax.set_ylabel("")
        legend_below(fig, handles, handlelength=1.5)
        save_figure(fig, stem, title, synthetic)
    return fig


def decision_curve_figure(
    y_true: ArrayLike,
    probabilities: Mapping[str, ArrayLike],
    stem: str | Path,
    synthetic: bool,
    thresholds: ArrayLike | None = None,
    title: str = "Decision curves: net benefit of the models vs treat all / treat none",
) -> Figure:
    """Net benefit of each model against treat-all and treat-none (:func:`htct.evaluate.decision_curve`).

    The y axis runs from a little below 0 to a little above the prevalence (the most any strategy
    can reach), since treat-all falls steeply at high thresholds.

    Args:
        y_true: 0/1 truth per scan.
        probabilities: model name -> predicted HT probability per scan.
        stem: output path without extension.
        synthetic: adds the synthetic-cohort note.
        thresholds: threshold probabilities; default 0.01 to 0.99 in steps of 0.01.
        title: metadata title.

    Returns:
        The figure (already written).
    """
    truth = _binary(y_true, "y_true")
    curves = decision_curve(truth, dict(probabilities), thresholds)
    prevalence = float(truth.mean())
    with figure_style():
        fig = new_figure(SINGLE_COLUMN_IN, 3.4)
        ax = fig.subplots()
        handles = []
        for k, name in enumerate(probabilities):
            curve = curves[curves["strategy"] == name]
            (line,) = ax.plot(
                curve["threshold"],
                curve["net_benefit"],
                color=MODEL_COLOURS[k % len(MODEL_COLOURS)],
                label=display_name(name),
            )
            handles.append(line)
        treat_all = curves[curves["strategy"] == "treat all"]
        treat_none = curves[curves["strategy"] == "treat none"]
        handles.append(
            ax.plot(
                treat_all["threshold"],
                treat_all["net_benefit"],
                color="0.45",
                linestyle="--",
                linewidth=1.0,
                label="Treat all",
            )[0]
        )
        handles.append(
            ax.plot(
                treat_none["threshold"],
                treat_none["net_benefit"],
                color=OKABE_ITO["black"],
                linewidth=0.8,
                label="Treat none",
            )[0]
        )
        margin = max(0.02, 0.15 * prevalence)
        ax.set_ylim(-margin, prevalence + margin)
        ax.set_xlim(0, 1)
        ax.set_xlabel("Threshold probability")
        ax.set_ylabel("Net benefit")
        legend_below(fig, handles, ncols=2, handlelength=1.8)
        save_figure(fig, stem, title, synthetic)
    return fig


def agreement_figure(
    percent_agreement: pd.DataFrame,
    kappa: pd.DataFrame,
    stem: str | Path,
    synthetic: bool,
    title: str = "Agreement of the HT calls between the raters (test set)",
) -> Figure:
    """Heatmaps (seaborn) of the pairwise percent agreement and Cohen's kappa of the raters' calls.

    Each matrix is symmetric, so only the lower triangle (without the diagonal) is drawn.

    Args:
        percent_agreement: rater x rater share of scans with the same call (0-1).
        kappa: rater x rater Cohen's kappa.
        stem: output path without extension.
        synthetic: adds the synthetic-cohort note.
        title: metadata title.

    Returns:
        The figure (already written).
    """
    import seaborn as sns

    panels = {
        "Percent agreement (fraction of scans)": (percent_agreement, 0.0),
        "Cohen's kappa": (kappa, -1.0),
    }
    with figure_style():
        fig = new_figure(DOUBLE_COLUMN_IN, 3.3)
        axes = fig.subplots(1, 2)
        for ax, (name, (matrix, vmin)) in zip(axes, panels.items(), strict=True):
            labels = [display_name(str(rater)) for rater in matrix.index]
            # Rows 2..n against columns 1..n-1: the lower triangle without the diagonal.
            values = matrix.to_numpy(dtype=float)[1:, :-1]
            sns.heatmap(
                values,
                ax=ax,
                mask=np.triu(np.ones_like(values, dtype=bool), k=1),
                cmap=CONFUSION_CMAP,
                vmin=vmin,
                vmax=1.0,
                annot=True,
                fmt=".2f",
                annot_kws={"fontsize": 6},
                square=True,
                xticklabels=labels[:-1],
                yticklabels=labels[1:],
                cbar_kws={"shrink": 0.8, "label": name},
            )
            ax.set_title(name)
            ax.tick_params(axis="x", rotation=90)
            ax.tick_params(axis="y", rotation=0)
        save_figure(fig, stem, title, synthetic)
    return fig


__all__ = [
    "RocBand",
    "agreement_figure",
    "calibration_figure",
    "decision_curve_figure",
    "fig2_confusion",
    "roc_band",
    "supp_fig4_roc",
]
