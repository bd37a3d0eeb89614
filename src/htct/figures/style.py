"""Shared look of every figure: Okabe–Ito colours, column-width sizes, the synthetic note, saving.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot), so no global state or
interactive backend is involved: PNG goes through Agg and PDF through matplotlib's PDF backend.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text

from htct.names import display_name  # noqa: F401  (re-exported for the figures)

SYNTHETIC_FIGURE_NOTE = "Synthetic cohort — not the paper's data"
"""Printed on every figure (and in its PDF/PNG title) when the data are the synthetic cohort."""

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
"""Okabe & Ito (2008) colour-blind-safe palette."""

# Order in which models take colours: the first (CTNet, by convention) gets the strongest contrast;
# yellow comes last because it is faint on white.
MODEL_COLOURS = [
    OKABE_ITO["vermillion"],
    OKABE_ITO["blue"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
    OKABE_ITO["yellow"],
]
READER_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p"]

SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.0
PNG_DPI = 200

RC_PARAMS = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "pdf.fonttype": 42,  # embed TrueType, so journals can edit text in the PDF
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
}


@contextmanager
def figure_style() -> Iterator[None]:
    """Apply the project's rc settings (fonts >= 7 pt at print size) while a figure is built."""
    with mpl.rc_context(RC_PARAMS):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A pyplot-free figure of the given print size (inches)."""
    return Figure(figsize=(width_in, height_in), layout="constrained")


def add_synthetic_note(fig: Figure) -> Text:
    """Write the synthetic-cohort note across the top of `fig`, where it cannot be cropped away."""
    return fig.suptitle(SYNTHETIC_FIGURE_NOTE, fontsize=8, fontweight="bold", color=OKABE_ITO["vermillion"])


def figure_texts(fig: Figure) -> list[str]:
    """Every text drawn on `fig` (titles, labels, annotations, legend entries), for checks and tests."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def legend_below(fig: Figure, handles: list, title: str | None = None, ncols: int = 1, **kwargs) -> Legend:
    """A figure legend under the axes (constrained layout makes room for it), so it never covers
    data whatever the curves do; most of our panels have data in every corner on small test sets.

    Args:
        fig: the figure (built with :func:`new_figure`).
        handles: the artists to explain.
        title: legend title.
        ncols: columns of entries.
        **kwargs: further :meth:`matplotlib.figure.Figure.legend` options.

    Returns:
        The legend.
    """
    return fig.legend(handles=handles, loc="outside lower center", title=title, ncols=ncols, **kwargs)


def save_figure(fig: Figure, stem: str | Path, title: str, synthetic: bool) -> list[Path]:
    """Write `{stem}.pdf` and `{stem}.png` (200 dpi) with explicit, PHI-free metadata.

    Metadata are set explicitly: Title (plus the synthetic note when `synthetic`) and Creator
    ``ctnet-ht``; no Author, and no creation date, so reruns give identical PDFs.

    Args:
        fig: the figure (the note is added here when `synthetic` and not yet on it).
        stem: output path without extension; parent folders are created.
        title: figure title for the metadata, e.g. ``"Figure 2. Confusion matrices"``.
        synthetic: whether the data are the synthetic cohort.

    Returns:
        ``[pdf_path, png_path]``.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if synthetic and SYNTHETIC_FIGURE_NOTE not in figure_texts(fig):
        add_synthetic_note(fig)
    full_title = f"{title} — {SYNTHETIC_FIGURE_NOTE}" if synthetic else title
    # The PDF backend's font subsetting logs every glyph table at INFO: keep it out of the job logs.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    pdf_path, png_path = Path(f"{stem}.pdf"), Path(f"{stem}.png")
    with figure_style():
        fig.savefig(
            pdf_path,
            metadata={
                "Title": full_title,
                "Creator": "ctnet-ht",
                "Producer": "matplotlib",
                "CreationDate": None,
            },
        )
        fig.savefig(
            png_path,
            dpi=PNG_DPI,
            metadata={"Title": full_title, "Creator": "ctnet-ht", "Software": "matplotlib"},
        )
    return [pdf_path, png_path]
