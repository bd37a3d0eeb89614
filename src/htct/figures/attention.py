"""Figure 3 and the attention analysis: Grad-CAM heatmaps (captum) and where their mass falls.

Grad-CAM (Selvaraju et al., ICCV 2017) is computed with :class:`captum.attr.LayerGradCam` on the
model's ``cam_layer``, upsampled to the input grid and normalised. pytorch-grad-cam (``grad-cam``
on PyPI) cannot be used: it requires torchvision, which has no CPU build on our machines; captum
depends on torch only and handles 3D layers.

The attention analysis asks whether the network looks at the brain or at the skull and scalp
(the paper's motivation for skull stripping) and whether it looks at the lesion: the share of the
heatmap's total mass inside the intracranial mask, outside it, and inside the lesion mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from htct.figures.style import DOUBLE_COLUMN_IN, OKABE_ITO, figure_style, new_figure, save_figure

if TYPE_CHECKING:  # torch is imported where used, so the plotting environment needs it only for Grad-CAM
    import torch
    from torch import nn

HEATMAP_CMAP = "inferno"  # perceptually uniform; reads on grey CT
HEATMAP_ALPHA = 0.65
"""Opacity of the strongest attention; weaker attention fades out (see :func:`fig3_attention`)."""
LESION_OUTLINE = OKABE_ITO["sky_blue"]


def gradcam(model: nn.Module, volume: torch.Tensor | NDArray, target: int | None = 0) -> NDArray[np.float32]:
    """Grad-CAM heatmap of the HT logit, upsampled to the input grid, ReLU'd and scaled to [0, 1].

    For a 3D-conv model the ``cam_layer`` output ``[B, K, d, h, w]`` is upsampled trilinearly to
    ``[28, S, S]``. For a 2D-conv model (slices as input channels) the CAM is in-plane only,
    ``[B, K, h, w]``: it is upsampled bilinearly to ``[S, S]`` and the same map is broadcast over
    the 28 slices (it cannot say which slice mattered). Each scan's map is divided by its maximum;
    a map with no positive evidence stays all zeros. For an ensemble of fold models (a model with
    ``members``, :class:`htct.train.predict.FoldEnsemble`) the heatmap is the mean of the members'
    heatmaps, divided again by its maximum.

    Args:
        model: model with a ``cam_layer`` attribute (or ``members`` that have one), mapping
            ``[B, C, 28, S, S]`` to logits ``[B, 1]``; it is switched to eval mode (dropout/batch-norm
            must not change the map).
        volume: one scan ``[C, 28, S, S]`` or a batch ``[B, C, 28, S, S]`` (tensor or array, e.g.
            float16 rows of ``volumes.npy``).
        target: output column to explain (0 for the single HT logit; None for 1-D outputs).

    Returns:
        float32 heatmap ``[28, S, S]`` (or ``[B, 28, S, S]`` for a batch) in [0, 1].

    Example:
        >>> import torch
        >>> from htct.models import create_model
        >>> model = create_model("ctnet")
        >>> gradcam(model, torch.rand(1, 28, 32, 32)).shape
        (28, 32, 32)
    """
    import torch
    from captum.attr import LayerAttribution, LayerGradCam

    members = getattr(model, "members", None)
    if members is not None and getattr(model, "cam_layer", None) is None:
        mean = np.mean([gradcam(member, volume, target) for member in members], axis=0)
        axes = tuple(range(mean.ndim - 3, mean.ndim))  # per scan
        peak = np.maximum(mean.max(axis=axes, keepdims=True), np.finfo(np.float32).tiny)
        return np.clip(mean / peak, 0, 1).astype(np.float32)
    layer = getattr(model, "cam_layer", None)
    if layer is None:
        raise TypeError(f"{type(model).__name__} has no cam_layer to compute Grad-CAM on")
    x = torch.as_tensor(np.asarray(volume, dtype=np.float32)) if isinstance(volume, np.ndarray) else volume
    single = x.dim() == 4
    if single:
        x = x.unsqueeze(0)
    if x.dim() != 5:
        raise ValueError(f"volume must be [C, D, H, W] or [B, C, D, H, W], got shape {tuple(x.shape)}")
    parameter = next(model.parameters(), None)
    x = x.float().to(parameter.device if parameter is not None else "cpu")
    model.eval()
    depth, height, width = x.shape[-3:]
    with torch.enable_grad():
        # Per-scan gradients from one backward pass: in eval mode the scans do not interact.
        cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=False).detach().float()
    if cam.dim() == 5:
        cam = LayerAttribution.interpolate(cam, (depth, height, width), interpolate_mode="trilinear")[:, 0]
    elif cam.dim() == 4:
        cam = LayerAttribution.interpolate(cam, (height, width), interpolate_mode="bilinear")[:, 0]
        cam = cam.unsqueeze(1).expand(-1, depth, height, width)
    else:
        raise ValueError(f"cam_layer output must be 4-D (2D conv) or 5-D (3D conv), got {cam.dim()}-D")
    # ReLU after upsampling: only regions that raise the HT logit count as attention.
    cam = torch.relu(cam)
    peak = cam.flatten(1).amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny).view(-1, 1, 1, 1)
    heatmap = (cam / peak).clamp(0, 1).cpu().numpy().astype(np.float32)
    return heatmap[0] if single else heatmap


def attention_mass(
    heatmap: ArrayLike, brain_mask: ArrayLike, lesion_mask: ArrayLike | None = None
) -> dict[str, float]:
    """Share of a heatmap's total mass inside the brain, outside it, and inside the lesion.

    Args:
        heatmap: non-negative ``[28, S, S]`` map (e.g. from :func:`gradcam`).
        brain_mask: intracranial mask, same shape (``brain_mask.npy`` row).
        lesion_mask: lesion mask, same shape (synthetic cohort only); None gives ``lesion`` NaN.

    Returns:
        ``brain``, ``skull_or_outside`` (= 1 - brain: skull, scalp, air), ``lesion`` (fractions of
        the total mass; NaN when the map is all zeros) and ``lesion_volume_share`` (lesion voxels /
        all voxels: the lesion share a uniform map would get, the chance level).
    """
    heat = np.asarray(heatmap, dtype=np.float64)
    brain = np.asarray(brain_mask) > 0
    if heat.shape != brain.shape:
        raise ValueError(f"heatmap {heat.shape} and brain_mask {brain.shape} differ in shape")
    if np.any(heat < 0):
        raise ValueError("heatmap must be non-negative")
    total = heat.sum()
    lesion = None if lesion_mask is None else np.asarray(lesion_mask) > 0
    if lesion is not None and lesion.shape != heat.shape:
        raise ValueError(f"heatmap {heat.shape} and lesion_mask {lesion.shape} differ in shape")
    if total <= 0:
        brain_share = lesion_share = np.nan
    else:
        brain_share = heat[brain].sum() / total
        lesion_share = np.nan if lesion is None else heat[lesion].sum() / total
    return {
        "brain": float(brain_share),
        "skull_or_outside": float(1.0 - brain_share),
        "lesion": float(lesion_share),
        "lesion_volume_share": float(np.nan if lesion is None else lesion.mean()),
    }


def attention_summary(
    model: nn.Module,
    volumes: NDArray,
    brain_masks: NDArray,
    lesion_masks: NDArray | None,
    rows: Sequence[int],
    scan_ids: Sequence[str] | None = None,
    batch_size: int = 4,
) -> pd.DataFrame:
    """Attention mass per scan (brain / skull or outside / lesion) and the mean over scans.

    Works with any model and arrays, so "with vs without skull stripping" is two calls (two models
    trained on two array sets) whose tables are compared.

    Args:
        model: model with a ``cam_layer``.
        volumes: ``volumes.npy`` ``[N, C, 28, S, S]`` (a memory map is fine: only ``rows`` are read).
        brain_masks: ``brain_mask.npy`` ``[N, 28, S, S]``.
        lesion_masks: ``lesion_mask.npy`` ``[N, 28, S, S]`` or None (real cohort).
        rows: array rows to analyse (e.g. the test scans' ``row`` in ``index.tsv``).
        scan_ids: scan ID per entry of ``rows`` (for the table); default none.
        batch_size: scans per Grad-CAM pass.

    Returns:
        DataFrame ``row, scan_id, brain, skull_or_outside, lesion, lesion_volume_share``, one line
        per scan then a ``scan_id == "mean"`` line (``row`` missing) with the column means.
    """
    rows = [int(r) for r in rows]
    if scan_ids is not None and len(scan_ids) != len(rows):
        raise ValueError(f"scan_ids has {len(scan_ids)} entries but rows has {len(rows)}")
    records = []
    for start in range(0, len(rows), batch_size):
        batch_rows = rows[start : start + batch_size]
        heatmaps = gradcam(model, np.asarray(volumes[batch_rows], dtype=np.float32))
        for k, row in enumerate(batch_rows):
            lesion = None if lesion_masks is None else lesion_masks[row]
            records.append({"row": row, **attention_mass(heatmaps[k], brain_masks[row], lesion)})
    table = pd.DataFrame(
        records, columns=["row", "brain", "skull_or_outside", "lesion", "lesion_volume_share"]
    )
    table.insert(1, "scan_id", list(scan_ids) if scan_ids is not None else pd.NA)
    table["row"] = table["row"].astype("Int64")
    mean = table[["brain", "skull_or_outside", "lesion", "lesion_volume_share"]].mean()
    mean_row = pd.DataFrame([{"row": pd.NA, "scan_id": "mean", **mean.to_dict()}]).astype({"row": "Int64"})
    return pd.concat([table, mean_row], ignore_index=True)


def display_slice(image: NDArray) -> NDArray:
    """An axial slice ``[i, j]`` of a RAS+ array as shown in radiology: anterior up, patient's right
    on the viewer's left (rows = posterior-to-anterior reversed, columns = right-to-left)."""
    return np.asarray(image).T[::-1, ::-1]


def largest_lesion_slice(lesion_mask: NDArray) -> int:
    """Slice with the largest lesion area (the middle slice when the mask is empty)."""
    area = np.asarray(lesion_mask).reshape(lesion_mask.shape[0], -1).sum(axis=1)
    return int(np.argmax(area)) if area.any() else lesion_mask.shape[0] // 2


def fig3_attention(
    volumes: NDArray,
    heatmaps: Mapping[int, NDArray] | NDArray,
    lesion_masks: NDArray | None,
    cases: Sequence[tuple[str, int, int | None]],
    stem: str | Path,
    synthetic: bool,
    channel: int = 0,
    title: str = "Figure 3. Grad-CAM attention of CTNet on test scans",
) -> Figure:
    """CT slices with the Grad-CAM overlay and the lesion outline, one column per case.

    Top row: the CT slice (brain window, channel `channel`) with the lesion outline; bottom row: the
    same slice with the heatmap overlaid (``inferno``) and the outline. The overlay's opacity grows
    with the heatmap (0 where it is 0, 0.65 from half its maximum up), so the CT stays readable
    where the network does not look. Slices are shown in radiological convention
    (:func:`display_slice`).

    Args:
        volumes: ``volumes.npy`` ``[N, C, 28, S, S]``.
        heatmaps: row -> heatmap ``[28, S, S]`` (a dict of the cases' rows, or an array indexed by row).
        lesion_masks: ``lesion_mask.npy`` or None (no outline).
        cases: ``(title, row, slice)`` per column, e.g. ``("Visible lesion", 12, None)``; slice None
            picks the slice with the largest lesion area (or, with no lesion, the heatmap's peak).
        stem: output path without extension.
        synthetic: adds the synthetic-cohort note.
        channel: input channel shown (0: brain window 40/80).
        title: metadata title.

    Returns:
        The figure (already written).
    """
    if not cases:
        raise ValueError("cases is empty")
    with figure_style():
        fig = new_figure(min(DOUBLE_COLUMN_IN, 0.4 + 1.75 * len(cases)), 4.0)
        axes = fig.subplots(2, len(cases), squeeze=False)
        for k, (case_title, row, slice_index) in enumerate(cases):
            heatmap = np.asarray(heatmaps[row], dtype=np.float32)
            lesion = None if lesion_masks is None else np.asarray(lesion_masks[row])
            if slice_index is None:
                if lesion is not None and lesion.any():
                    slice_index = largest_lesion_slice(lesion)
                else:
                    slice_index = int(np.argmax(heatmap.reshape(heatmap.shape[0], -1).max(axis=1)))
            ct = display_slice(np.asarray(volumes[row, channel, slice_index], dtype=np.float32))
            for r, ax in enumerate(axes[:, k]):
                ax.imshow(ct, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                if r == 1:
                    heat = display_slice(np.clip(heatmap[slice_index], 0, 1))
                    ax.imshow(
                        heat,
                        cmap=HEATMAP_CMAP,
                        vmin=0,
                        vmax=1,
                        alpha=HEATMAP_ALPHA * np.clip(2 * heat, 0, 1),
                        interpolation="nearest",
                    )
                if lesion is not None and lesion[slice_index].any():
                    ax.contour(
                        display_slice(lesion[slice_index].astype(float)),
                        levels=[0.5],
                        colors=LESION_OUTLINE,
                        linewidths=0.8,
                    )
                ax.set_xticks([])
                ax.set_yticks([])
                ax.spines[:].set_visible(False)
            axes[0, k].set_title(f"{case_title}\nslice {slice_index + 1}", fontsize=7)
            axes[0, k].text(
                0.03,
                0.97,
                "R",
                transform=axes[0, k].transAxes,
                color="white",
                fontsize=7,
                ha="left",
                va="top",
            )
        axes[0, 0].set_ylabel("CT (brain window)")
        axes[1, 0].set_ylabel("Grad-CAM")
        # The colour bar shows the colormap at full opacity, not the faded overlay.
        scale = ScalarMappable(norm=Normalize(0, 1), cmap=HEATMAP_CMAP)
        colorbar = fig.colorbar(scale, ax=axes[1, :].tolist(), shrink=0.8, pad=0.02)
        colorbar.set_label("Grad-CAM (scaled)")
        if lesion_masks is not None:
            from matplotlib.lines import Line2D

            fig.legend(
                handles=[Line2D([], [], color=LESION_OUTLINE, linewidth=1.0, label="Lesion outline")],
                loc="outside lower center",
                ncol=1,
                frameon=False,
            )
        save_figure(fig, stem, title, synthetic)
    return fig
