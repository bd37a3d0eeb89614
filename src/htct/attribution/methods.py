"""The attribution methods side by side, behind one call: a signed map per scan on the input grid.

Every method returns ``[B, D, H, W]`` float32 maps with one sign convention: positive = evidence that
raises the HT logit relative to the method's reference (zero activation for the CAMs, healthy tissue
for occlusion and Integrated Gradients; see :mod:`htct.attribution.perturbation`). Localisation uses
the positive part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Method:
    """An attribution method: display name, reference, cost class and the function computing it.

    Attributes:
        name: key used in the results (``gradcam``, ``pooled_cam``, ``occlusion``, ``integrated_gradients``).
        display: name in tables and figures.
        reference: what the map is relative to (for captions).
        units: what a voxel's value is (colour-bar label).
        expensive: many forward passes per scan (run on a subset of the scans).
        compute: ``fn(model, x [B, C, D, H, W], brain [B, D, H, W], **options) -> [B, D, H, W]``.
        options: keyword options passed to ``compute``.
    """

    name: str
    display: str
    reference: str
    units: str
    expensive: bool
    compute: Callable[..., torch.Tensor]
    options: dict = field(default_factory=dict)


def _gradcam(model: nn.Module, x: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    import torch

    from htct.attribution.gradcam import gradcam

    return torch.from_numpy(gradcam(model, x))


def _pooled_cam(model: nn.Module, x: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    from htct.attribution.pooled_cam import pooled_cam_map

    return pooled_cam_map(model, x)


def _occlusion(
    model: nn.Module, x: torch.Tensor, brain: torch.Tensor, patch: Sequence[int] | None
) -> torch.Tensor:
    from htct.attribution.perturbation import cell_patch, occlusion

    return occlusion(model, x, brain, patch=tuple(patch) if patch else cell_patch(model, tuple(x.shape[1:])))


def _integrated_gradients(
    model: nn.Module, x: torch.Tensor, brain: torch.Tensor, n_steps: int
) -> torch.Tensor:
    from htct.attribution.perturbation import integrated_gradients

    return integrated_gradients(model, x, brain, n_steps=n_steps)


def methods(occlusion_patch: Sequence[int] | str | None = "auto", ig_steps: int = 8) -> dict[str, Method]:
    """The four methods compared, in table order (the paper's Grad-CAM first).

    Args:
        occlusion_patch: occlusion patch in voxels (slices, rows, columns), or ``"auto"``: one cell of
            the model's last feature map (4 x 8 x 8 voxels for CTNet, which downsamples 8-fold
            in-plane), so that occlusion has the resolution of the CAMs.
        ig_steps: quadrature points of Integrated Gradients.

    Returns:
        name -> :class:`Method`.
    """
    return {
        method.name: method
        for method in (
            Method(
                "gradcam",
                "Grad-CAM (paper)",
                "zero activation",
                "Grad-CAM, share of the scan's maximum",
                False,
                _gradcam,
            ),
            Method(
                "pooled_cam",
                "Pooled CAM (exact)",
                "zero activation",
                "logit contribution per voxel",
                False,
                _pooled_cam,
            ),
            Method(
                "occlusion",
                "Occlusion",
                "healthy tissue",
                "logit drop when the voxel's patch turns healthy",
                True,
                _occlusion,
                {
                    "patch": None
                    if occlusion_patch in (None, "auto")
                    else tuple(int(p) for p in occlusion_patch)
                },
            ),
            Method(
                "integrated_gradients",
                "Integrated Gradients",
                "healthy tissue",
                "logit contribution per voxel vs healthy tissue",
                True,
                _integrated_gradients,
                {"n_steps": int(ig_steps)},
            ),
        )
    }


def attribution_maps(
    model: nn.Module,
    method: Method,
    volumes: NDArray,
    brain_masks: NDArray,
    rows: Sequence[int],
    batch_size: int | None = None,
) -> NDArray[np.float32]:
    """One method's signed maps for some rows of the arrays.

    Args:
        model: the model (or fold ensemble), in eval mode.
        method: from :func:`methods`.
        volumes: ``volumes.npy`` ``[N, C, D, H, W]`` (a memory map is fine: only ``rows`` are read).
        brain_masks: ``brain_mask.npy`` ``[N, D, H, W]``.
        rows: array rows.
        batch_size: scans per call of the method; default 16 for the CAMs (one forward pass each:
            batches amortise the per-call cost) and 4 for the costly methods (which batch their
            perturbations themselves).

    Returns:
        float32 ``[len(rows), D, H, W]``.
    """
    import torch

    rows = [int(r) for r in rows]
    batch_size = batch_size or (4 if method.expensive else 16)
    out = np.zeros((len(rows), *volumes.shape[2:]), dtype=np.float32)
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        x = torch.from_numpy(np.asarray(volumes[batch], dtype=np.float32))
        brain = torch.from_numpy(np.asarray(brain_masks[batch], dtype=np.uint8))
        out[start : start + len(batch)] = method.compute(model, x, brain, **method.options).cpu().numpy()
    return out
