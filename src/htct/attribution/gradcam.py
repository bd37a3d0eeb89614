"""Grad-CAM (Selvaraju et al., ICCV 2017), the paper's attention method, with captum.

:class:`captum.attr.LayerGradCam` on the model's ``cam_layer``, upsampled to the input grid with
``LayerAttribution.interpolate`` and ReLU'd. pytorch-grad-cam (``grad-cam`` on PyPI) cannot be used:
it requires torchvision, which has no CPU build on our machines; captum depends on torch only and
handles 3D layers.

With CTNet's pooled head (global avg + max pooling, then a linear layer) the gradient of the logit
with respect to a feature map is the same constant in every cell except the max cell, so Grad-CAM's
channel weights are constants and the map is a plain CAM that spreads the max-pooled evidence over
every cell; :mod:`htct.attribution.pooled_cam` decomposes the logit exactly instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # torch is imported where used, so that importing htct.attribution stays light
    import torch
    from torch import nn


def as_batch(volume: torch.Tensor | NDArray, model: nn.Module) -> tuple[torch.Tensor, bool]:
    """A float32 batch ``[B, C, D, H, W]`` on the model's device, and whether one scan was given."""
    import torch

    x = torch.as_tensor(np.asarray(volume, dtype=np.float32)) if isinstance(volume, np.ndarray) else volume
    single = x.dim() == 4
    if single:
        x = x.unsqueeze(0)
    if x.dim() != 5:
        raise ValueError(f"volume must be [C, D, H, W] or [B, C, D, H, W], got shape {tuple(x.shape)}")
    parameter = next(model.parameters(), None)
    return x.float().to(parameter.device if parameter is not None else "cpu"), single


def gradcam_raw(model: nn.Module, volume: torch.Tensor | NDArray, target: int | None = 0) -> torch.Tensor:
    """Signed Grad-CAM (before ReLU and scaling) upsampled to the input grid, ``[B, D, H, W]``.

    For a 3D-conv model the ``cam_layer`` output ``[B, K, d, h, w]`` is upsampled trilinearly. For a
    2D-conv model (slices as input channels) the CAM is in-plane ``[B, K, h, w]``: it is upsampled
    bilinearly to ``[H, W]`` and broadcast over the slices (it cannot say which slice mattered).
    For a fold ensemble (a model with ``members``) it is the mean of the members' maps.
    """
    import torch
    from captum.attr import LayerAttribution, LayerGradCam

    members = getattr(model, "members", None)
    if members is not None and getattr(model, "cam_layer", None) is None:
        return torch.stack([gradcam_raw(member, volume, target) for member in members]).mean(0)
    layer = getattr(model, "cam_layer", None)
    if layer is None:
        raise TypeError(f"{type(model).__name__} has no cam_layer to compute Grad-CAM on")
    x, _ = as_batch(volume, model)
    model.eval()
    depth, height, width = x.shape[-3:]
    with torch.enable_grad():
        # Per-scan gradients from one backward pass: in eval mode the scans do not interact.
        cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=False).detach().float()
    if cam.dim() == 5:
        return LayerAttribution.interpolate(cam, (depth, height, width), interpolate_mode="trilinear")[:, 0]
    if cam.dim() == 4:
        cam = LayerAttribution.interpolate(cam, (height, width), interpolate_mode="bilinear")[:, 0]
        return cam.unsqueeze(1).expand(-1, depth, height, width)
    raise ValueError(f"cam_layer output must be 4-D (2D conv) or 5-D (3D conv), got {cam.dim()}-D")


def gradcam(model: nn.Module, volume: torch.Tensor | NDArray, target: int | None = 0) -> NDArray[np.float32]:
    """Grad-CAM heatmap of the HT logit, upsampled to the input grid, ReLU'd and scaled to [0, 1].

    Each scan's map is divided by its maximum; a map with no positive evidence stays all zeros. For
    an ensemble of fold models (a model with ``members``, :class:`htct.train.predict.FoldEnsemble`)
    the heatmap is the mean of the members' heatmaps, divided again by its maximum.

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

    members = getattr(model, "members", None)
    if members is not None and getattr(model, "cam_layer", None) is None:
        mean = np.mean([gradcam(member, volume, target) for member in members], axis=0)
        axes = tuple(range(mean.ndim - 3, mean.ndim))  # per scan
        peak = np.maximum(mean.max(axis=axes, keepdims=True), np.finfo(np.float32).tiny)
        return np.clip(mean / peak, 0, 1).astype(np.float32)
    single = (volume.dim() if hasattr(volume, "dim") else np.ndim(volume)) == 4
    # ReLU after upsampling: only regions that raise the HT logit count as attention.
    cam = torch.relu(gradcam_raw(model, volume, target))
    peak = cam.flatten(1).amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny).view(-1, 1, 1, 1)
    heatmap = (cam / peak).clamp(0, 1).cpu().numpy().astype(np.float32)
    return heatmap[0] if single else heatmap
