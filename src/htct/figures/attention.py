"""Figure 3: the paper's two cases, CT beside the attribution map, with the infarct outline.

(a) a visible infarct, (b) an infarct not yet visible on the scan (the cases of
:func:`htct.figures.cases.choose_cases`; a run without lesion truth shows the test scans of highest
and lowest predicted risk, and draws no outline). Left: the CT slice (brain window) with the infarct outline;
right: the same slice with the positive part of the attribution map overlaid (``inferno``), scaled
per row from 0 to the map's maximum on the slice shown, so that its range is visible, with that
row's colour bar in the method's units. The maps come from :mod:`htct.attribution`; which method and
variant are drawn is decided by its tests (:func:`htct.attribution.stage.figure_choice`) and stated on
the figure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from numpy.typing import NDArray

from htct.figures.style import OKABE_ITO, figure_style, new_figure, save_figure
from htct.names import variant_label

HEATMAP_CMAP = "inferno"  # perceptually uniform; reads on grey CT
HEATMAP_ALPHA = 0.75
"""Opacity of the strongest evidence; weaker evidence fades out, so the CT stays readable."""
LESION_OUTLINE = OKABE_ITO["sky_blue"]


@dataclass
class Fig3Case:
    """One row of figure 3.

    Attributes:
        title: e.g. "Visible infarct".
        ct: ``[D, H, W]`` CT in the brain window ([0, 1], channel 0 of the arrays).
        attribution: ``[D, H, W]`` signed map (positive = raises the HT logit).
        lesion: ``[D, H, W]`` infarct mask or None.
        slice_index: slice shown; None = the largest infarct area (or the map's peak without one).
        note: one line under the title (e.g. the case's lesion share of the evidence).
    """

    title: str
    ct: NDArray
    attribution: NDArray
    lesion: NDArray | None = None
    slice_index: int | None = None
    note: str = ""


def display_slice(image: NDArray) -> NDArray:
    """An axial slice ``[i, j]`` of a RAS+ array as shown in radiology: anterior up, patient's right
    on the viewer's left (rows = posterior-to-anterior reversed, columns = right-to-left)."""
    return np.asarray(image).T[::-1, ::-1]


def largest_lesion_slice(lesion_mask: NDArray) -> int:
    """Slice with the largest lesion area (the middle slice when the mask is empty)."""
    area = np.asarray(lesion_mask).reshape(lesion_mask.shape[0], -1).sum(axis=1)
    return int(np.argmax(area)) if area.any() else lesion_mask.shape[0] // 2


def _slice_of(case: Fig3Case) -> int:
    if case.slice_index is not None:
        return case.slice_index
    if case.lesion is not None and np.asarray(case.lesion).any():
        return largest_lesion_slice(np.asarray(case.lesion))
    evidence = np.maximum(np.asarray(case.attribution), 0)
    return int(np.argmax(evidence.reshape(evidence.shape[0], -1).max(axis=1)))


def fig3_attention(
    cases: Sequence[Fig3Case],
    stem: str | Path,
    synthetic: bool,
    units: str,
    caption: str,
    title: str = "Figure 3. Attribution of CTNet on test scans",
) -> Figure:
    """Draw figure 3: one row per case, CT with the infarct outline | the map over the CT.

    Args:
        cases: the rows (a, b, ...).
        stem: output path without extension.
        synthetic: adds the synthetic-cohort note.
        units: colour-bar label (what a voxel's value is).
        caption: text under the panels (what the colours mean, which method and why).
        title: metadata title.

    Returns:
        The figure (already written).
    """
    if not cases:
        raise ValueError("cases is empty")
    with figure_style():
        fig = new_figure(4.6, 0.6 + 2.15 * len(cases))
        grid = fig.add_gridspec(len(cases), 3, width_ratios=[1, 1, 0.06])
        for r, case in enumerate(cases):
            slice_index = _slice_of(case)
            ct = display_slice(np.asarray(case.ct[slice_index], dtype=np.float32))
            heat = display_slice(np.maximum(np.asarray(case.attribution[slice_index], dtype=np.float32), 0))
            peak = float(heat.max()) if heat.max() > 0 else 1.0
            lesion = None if case.lesion is None else np.asarray(case.lesion[slice_index])
            for c in range(2):
                ax = fig.add_subplot(grid[r, c])
                ax.imshow(ct, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                if c == 1:
                    scaled = heat / peak
                    ax.imshow(
                        heat,
                        cmap=HEATMAP_CMAP,
                        vmin=0,
                        vmax=peak,
                        alpha=HEATMAP_ALPHA * np.clip(2 * scaled, 0, 1),
                        interpolation="nearest",
                    )
                if lesion is not None and lesion.any():
                    ax.contour(
                        display_slice(lesion.astype(float)),
                        levels=[0.5],
                        colors=LESION_OUTLINE,
                        linewidths=0.9,
                    )
                ax.set_xticks([])
                ax.set_yticks([])
                ax.spines[:].set_visible(False)
                if c == 0:
                    ax.set_title(f"{case.title}, slice {slice_index + 1}", fontsize=7, loc="left")
                    ax.text(
                        -0.08,
                        1.02,
                        "abcdefgh"[r],
                        transform=ax.transAxes,
                        fontsize=9,
                        fontweight="bold",
                        va="bottom",
                    )
                    ax.text(
                        0.03,
                        0.97,
                        "R",
                        transform=ax.transAxes,
                        color="white",
                        fontsize=7,
                        ha="left",
                        va="top",
                    )
                else:
                    ax.set_title(case.note, fontsize=6, loc="left")
            colorbar = fig.colorbar(
                ScalarMappable(norm=Normalize(0, peak), cmap=HEATMAP_CMAP), cax=fig.add_subplot(grid[r, 2])
            )
            colorbar.ax.tick_params(labelsize=6)
            colorbar.set_label(textwrap.fill(units, 30), fontsize=6)  # two short lines stay beside their bar
        # A figure-level label takes part in the constrained layout, so the caption never overlaps a panel.
        fig.supxlabel(textwrap.fill(caption, 105), fontsize=6, ha="left", x=0.01)
        save_figure(fig, stem, title, synthetic)
    return fig


def fig3_from_cases(
    cases: Mapping[str, NDArray],
    choice: Mapping[str, object],
    tables: Mapping[str, pd.DataFrame],
    stem: str | Path,
    synthetic: bool,
) -> Figure:
    """Figure 3 from a variant's stored cases (``cases.npz`` of the attribution rule) and the verdicts.

    Args:
        cases: the NPZ's arrays (``titles, volumes, lesion, map_<method>``).
        choice: :func:`htct.attribution.stage.figure_choice` (``input, method, uses_infarct, n_pass,
            n_tests, failed``).
        tables: the summary tables (``localisation`` for the chance levels in the caption).
        stem: output path without extension.
        synthetic: adds the synthetic-cohort note.

    Returns:
        The figure (already written).
    """
    from htct.attribution.localisation import localisation_scores
    from htct.attribution.methods import methods

    method = methods()[str(choice["method"])]
    maps = cases[f"map_{method.name}"]
    lesions = cases.get("lesion")
    rows = []
    for k, title in enumerate(cases["titles"]):
        lesion = None if lesions is None else lesions[k]
        scores = localisation_scores(maps[k], cases["brain"][k], lesion)
        note = (
            f"infarct: {100 * scores['lesion_share']:.0f}% of the in-brain evidence\n"
            f"(chance: its {100 * scores['lesion_chance']:.1f}% share of the brain)"
            if np.isfinite(scores["lesion_share"])
            else ""
        )
        rows.append(Fig3Case(str(title), cases["volumes"][k, 0], maps[k], lesion, None, note))
    from htct.figures.cases import chosen_by_risk

    variant = variant_label("ctnet", str(choice["input"]))
    uses = str(choice["uses_infarct"])
    evidence = {
        "true": "This variant uses the infarct by the counterfactual test.",
        "false": "NOT evidence of use: by the counterfactual test this variant does not use the infarct.",
        "undecided": "Whether this variant uses the infarct is undecided (no counterfactual test in this run).",
    }[uses]
    failed = str(choice.get("failed") or "")
    score = f"passes {choice['n_pass']} of {choice['n_tests']} tests" + (
        f"; fails {failed.replace('_', ' ')}" if failed else ""
    )
    # Only what this run knows: an outline where lesion masks exist, and how the cases were chosen.
    outline = (
        f"Blue line: infarct outline ({'synthetic truth' if synthetic else 'the lesion masks of data.lesion_masks'}). "
        if lesions is not None
        else ""
    )
    chosen = (
        "Cases: the test scans of highest and lowest predicted HT risk (no lesion truth in this run). "
        if chosen_by_risk([str(title) for title in cases["titles"]])
        else ""
    )
    caption = (
        f"{chosen}{method.display} of {variant}: of the methods compared, the one with the "
        f"fewest failures in the randomisation, localisation and deletion tests ({score}; table "
        f"'attribution'). {evidence} Colours: the map's "
        f"positive part, evidence that raises the predicted HT risk relative to {method.reference} "
        "(negative values are not drawn); each row is scaled from 0 to its slice's maximum (colour bar). "
        f"{outline}Radiological orientation (R = patient's right)."
    )
    title = f"Figure 3. {method.display} of {variant} on test scans"
    return fig3_attention(rows, stem, synthetic, method.units, caption, title)
