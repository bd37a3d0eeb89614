"""Training curve of one model (or fold): loss per epoch and validation AUC, the kept epoch marked.

Plain matplotlib: two line plots per epoch, nothing statistical for seaborn to add.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from htct.figures.style import (
    DOUBLE_COLUMN_IN,
    OKABE_ITO,
    display_name,
    figure_style,
    new_figure,
    save_figure,
)


def training_curve_figure(
    epochs: str | Path | pd.DataFrame,
    stem: str | Path,
    model: str,
    best_epoch: int | None = None,
    fold: int = -1,
    synthetic: bool = False,
) -> Figure:
    """Training and validation loss and validation AUC per epoch; the kept epoch is marked and named.

    Args:
        epochs: a training run's epochs.tsv (epoch, train_loss, val_loss, val_auc, ...) or its table.
        stem: output path without extension (writes ``.pdf`` and ``.png``).
        model: the model's registry name (shown by its display name, e.g. CTNet).
        best_epoch: the epoch whose weights were kept (default: the lowest validation loss).
        fold: the cross-validation fold, -1 for a single split.
        synthetic: adds the synthetic-cohort note.

    Returns:
        The figure (already written).
    """
    table = epochs if isinstance(epochs, pd.DataFrame) else pd.read_csv(epochs, sep="\t")
    name = display_name(model) + (f", fold {fold}" if fold >= 0 else "")
    with figure_style():
        fig = new_figure(DOUBLE_COLUMN_IN, 2.6)
        ax_loss, ax_auc = fig.subplots(1, 2)
        ax_loss.plot(table["epoch"], table["train_loss"], color=OKABE_ITO["blue"], label="Training")
        ax_loss.plot(table["epoch"], table["val_loss"], color=OKABE_ITO["vermillion"], label="Validation")
        ax_loss.set(xlabel="Epoch", ylabel="Loss (class-balanced BCE)", title=f"{name}: loss")
        ax_auc.plot(table["epoch"], table["val_auc"], color=OKABE_ITO["bluish_green"], label="Validation AUC")
        ax_auc.axhline(0.5, color="0.6", linestyle=":", linewidth=0.8, label="Chance (AUC 0.5)")
        ax_auc.set(xlabel="Epoch", ylabel="Validation AUC", ylim=(0, 1), title=f"{name}: validation AUC")
        if len(table):
            best = int(best_epoch or table.loc[table["val_loss"].idxmin(), "epoch"])
            for ax in (ax_loss, ax_auc):
                ax.axvline(best, color="0.35", linestyle="--", linewidth=0.9, label=f"Kept: epoch {best}")
        for ax in (ax_loss, ax_auc):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            # Below the axes: the curves fill any corner of a short run.
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=3, handlelength=1.6)
        save_figure(fig, stem, f"Training curve of {name}", synthetic)
    return fig
