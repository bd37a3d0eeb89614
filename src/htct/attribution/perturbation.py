"""Attribution by perturbation towards healthy tissue: occlusion and Integrated Gradients (captum).

Both methods explain the logit relative to a **healthy-tissue baseline**: inside the brain every
voxel is replaced by the scan's healthy-parenchyma value (per channel, the median of the in-brain
voxels: an infarct fills ~2% of the brain, so the median is normal parenchyma); outside the brain
the baseline is the scan itself (there is no "healthy tissue" to put in the skull or the air, and a
skull-stripped model never saw anything but zeros there). A zero (black) baseline would instead ask
"what if this voxel were air", which for CT is a lesion of its own, and makes a hypodense infarct
look like evidence *against* its own effect.

Sign convention (all methods of :mod:`htct.attribution`): a positive value is evidence that raises
the HT logit relative to the reference. With the healthy-tissue reference, a hypodense infarct that
raises the predicted risk is **positive**: the voxel is darker than healthy tissue
(x - baseline < 0) and darker raises the logit (d logit / d x < 0), so the product is positive.
Plain gradients, or gradient x input with a zero baseline, mark the same infarct negative.

- :func:`occlusion`: the logit drop when one patch of the brain is replaced by the baseline,
  f(x) - f(x with the patch healthy), given to every voxel of the patch (Zeiler & Fergus 2014);
  captum's :class:`~captum.attr.FeatureAblation` on a grid of non-overlapping patches, where only
  patches that touch the brain are evaluated (captum's ``Occlusion`` would also evaluate the ~60% of
  patches that lie in the air or the skull, where the baseline equals the scan).
- :func:`integrated_gradients`: captum's :class:`~captum.attr.IntegratedGradients` from the baseline
  to the scan (Sundararajan et al. 2017), summed over input channels; it sums to
  f(x) - f(baseline) (completeness) up to the quadrature error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from htct.attribution.gradcam import as_batch

if TYPE_CHECKING:
    import torch
    from torch import nn


def tissue_baseline(volume: torch.Tensor, brain_mask: torch.Tensor) -> torch.Tensor:
    """The healthy-tissue baseline of a batch: in-brain voxels set to the scan's in-brain median.

    Args:
        volume: ``[B, C, D, H, W]`` scans.
        brain_mask: ``[B, D, H, W]`` intracranial masks (non-zero inside).

    Returns:
        ``[B, C, D, H, W]``: per scan and channel, the median of the in-brain voxels inside the brain
        and the scan itself outside it. A scan with an empty brain mask is returned unchanged.
    """
    import torch

    brain = (brain_mask > 0).unsqueeze(1).expand_as(volume)
    baseline = volume.clone()
    for b in range(volume.shape[0]):
        for c in range(volume.shape[1]):
            inside = volume[b, c][brain[b, c]]
            if inside.numel():
                baseline[b, c][brain[b, c]] = torch.median(inside)
    return baseline


def _scans_and_baseline(
    model: nn.Module, volume: torch.Tensor | NDArray, brain_mask: torch.Tensor | NDArray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch on the model's device, its brain masks ``[B, D, H, W]`` and its healthy-tissue
    baseline; the model is put in eval mode."""
    import torch

    x, _ = as_batch(volume, model)
    if isinstance(brain_mask, torch.Tensor):
        brain = brain_mask.to(x.device)
    else:  # a copy: memory-mapped arrays are read-only
        brain = torch.from_numpy(np.array(brain_mask)).to(x.device)
    brain = brain.unsqueeze(0) if brain.dim() == 3 else brain
    model.eval()
    return x, brain, tissue_baseline(x, brain)


def patch_ids(brain_mask: torch.Tensor, patch: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
    """Number the non-overlapping patches of a grid that touch the brain, 0..n-1.

    Args:
        brain_mask: ``[D, H, W]`` mask of one scan.
        patch: patch size (slices, rows, columns).

    Returns:
        ``(ids, n)``: int64 ``[D, H, W]`` patch number of each voxel (voxels of patches without brain
        get 0: they are never changed, since the baseline equals the scan outside the brain), and
        the number of patches that touch the brain.
    """
    import torch

    depth, height, width = brain_mask.shape
    grid = [
        torch.arange(n, device=brain_mask.device) // p
        for n, p in zip((depth, height, width), patch, strict=True)
    ]
    n_h, n_w = (height + patch[1] - 1) // patch[1], (width + patch[2] - 1) // patch[2]
    block = (grid[0][:, None, None] * n_h + grid[1][None, :, None]) * n_w + grid[2][None, None, :]
    touched = torch.unique(block[brain_mask > 0])
    lookup = torch.zeros(int(block.max()) + 1, dtype=torch.int64, device=brain_mask.device)
    lookup[touched] = torch.arange(len(touched), device=brain_mask.device)
    return lookup[block], len(touched)


def cell_patch(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The input voxels of one cell of the model's last feature map (its ``cam_layer`` output):
    ``ceil(input / grid)`` per axis, for an input ``[C, D, H, W]``; a 2D-conv model's cells span
    every slice."""
    import math

    import torch

    member = getattr(model, "members", [model])[0]
    grids: list[tuple[int, ...]] = []
    hook = member.cam_layer.register_forward_hook(lambda _m, _i, out: grids.append(tuple(out.shape[2:])))
    try:
        with torch.no_grad():
            member.eval()(torch.zeros(1, *input_shape, device=next(member.parameters()).device))
    finally:
        hook.remove()
    grid = grids[0] if len(grids[0]) == 3 else (1, *grids[0])
    return tuple(math.ceil(n / g) for n, g in zip(input_shape[1:], grid, strict=True))


def occlusion(
    model: nn.Module,
    volume: torch.Tensor | NDArray,
    brain_mask: torch.Tensor | NDArray,
    patch: tuple[int, int, int] = (4, 8, 8),
    perturbations_per_eval: int = 16,
) -> torch.Tensor:
    """Occlusion map: the logit drop when each brain patch is replaced by healthy tissue.

    Args:
        model: model mapping ``[B, C, D, H, W]`` to logits ``[B, 1]`` (put in eval mode).
        volume: one scan ``[C, D, H, W]`` or a batch.
        brain_mask: ``[D, H, W]`` or ``[B, D, H, W]``.
        patch: patch size in voxels (slices, rows, columns).
        perturbations_per_eval: perturbed copies per forward pass.

    Returns:
        float32 ``[B, D, H, W]``: each brain voxel holds its patch's f(x) - f(x with the patch
        healthy); 0 outside the brain (never perturbed).
    """
    import torch
    from captum.attr import FeatureAblation

    x, brain, baseline = _scans_and_baseline(model, volume, brain_mask)
    ablation = FeatureAblation(model)
    maps = []
    for b in range(x.shape[0]):
        ids, _ = patch_ids(brain[b], patch)
        with torch.no_grad():
            attribution = ablation.attribute(
                x[b : b + 1],
                baselines=baseline[b : b + 1],
                target=0,
                feature_mask=ids[None, None].expand_as(x[b : b + 1]),
                perturbations_per_eval=perturbations_per_eval,
            )
        # Every channel of a voxel holds its patch's drop: take one channel, zero outside the brain.
        maps.append(attribution[0, 0] * (brain[b] > 0))
    return torch.stack(maps).float()


def integrated_gradients(
    model: nn.Module,
    volume: torch.Tensor | NDArray,
    brain_mask: torch.Tensor | NDArray,
    n_steps: int = 8,
    internal_batch_size: int = 16,
) -> torch.Tensor:
    """Integrated Gradients of the HT logit from the healthy-tissue baseline, summed over channels.

    Args:
        model, volume, brain_mask: as for :func:`occlusion`.
        n_steps: points of captum's Gauss-Legendre quadrature of the path integral.
        internal_batch_size: path points per forward/backward pass.

    Returns:
        float32 ``[B, D, H, W]``; its sum is f(x) - f(baseline) up to the quadrature error, and it
        is 0 outside the brain (where the baseline equals the scan).
    """
    import torch
    from captum.attr import IntegratedGradients

    x, _, baseline = _scans_and_baseline(model, volume, brain_mask)
    with torch.enable_grad():
        attribution = IntegratedGradients(model).attribute(
            x, baselines=baseline, target=0, n_steps=n_steps, internal_batch_size=internal_batch_size
        )
    return attribution.detach().sum(dim=1).float()
