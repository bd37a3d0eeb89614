"""Attention heatmaps: Grad-CAM on a model's `cam_layer` with captum's LayerGradCam.

captum is used because grad-cam/pytorch-grad-cam need torchvision, which has no CPU build here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def attention_map(model: nn.Module, volume: torch.Tensor | np.ndarray) -> np.ndarray:
    """Grad-CAM heatmap of the HT logit for one scan, upsampled to the scan's grid.

    Args:
        model: a model with a `cam_layer` attribute (every registered model has one); it is put in
            eval mode.
        volume: one preprocessed scan [C, D, H, W] (windowed to [0, 1]).

    Returns:
        float32 [D, H, W] in [0, 1] (all zeros when no region raises the logit). For a 2D CTNet the
        map is in-plane only and is repeated over the slices.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    if not hasattr(model, "cam_layer"):
        raise TypeError(f"{type(model).__name__} has no cam_layer to compute Grad-CAM on")
    x = torch.as_tensor(np.asarray(volume, dtype=np.float32) if isinstance(volume, np.ndarray) else volume)
    x = x.float().unsqueeze(0)
    device = next(model.parameters()).device
    x = x.to(device)
    model.eval()
    depth, height, width = x.shape[-3:]
    grad_cam = LayerGradCam(model, model.cam_layer)
    with torch.enable_grad():
        cam = grad_cam.attribute(x, target=0, relu_attributions=True).detach()
    if cam.dim() == 5:
        cam = LayerAttribution.interpolate(cam, (depth, height, width), interpolate_mode="trilinear")[0, 0]
    else:
        cam = LayerAttribution.interpolate(cam, (height, width), interpolate_mode="bilinear")[0, 0]
        cam = cam.expand(depth, height, width)
    cam = cam.float().cpu().numpy()
    peak = float(cam.max())
    if peak > 0:
        cam = cam / peak
    return np.ascontiguousarray(np.clip(cam, 0, 1), dtype=np.float32)
