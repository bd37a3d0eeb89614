"""Pooling-aware CAM: CTNet's HT logit decomposed exactly over the cells of its last feature map.

CTNet's HT predictor (:class:`htct.models.ctnet.HTPredictor`) is global pooling (average and/or
maximum per channel), a batch norm of the pooled features (in eval mode an affine map), dropout (in
eval mode the identity) and one linear layer. So the logit is linear in the pooled features::

    logit = sum_k a_k mean_c F_k(c) + sum_k b_k max_c F_k(c) + constant
    a_k, b_k = w_k gamma_k / sqrt(var_k + eps)      (fc weight times the batch norm's scale)
    constant = fc bias + sum_j w_j (beta_j - gamma_j mu_j / sqrt(var_j + eps))

The average part is spread over the cells exactly (``a_k F_k(c) / n_cells`` in cell c); the max part
belongs to the cell holding the maximum (``b_k F_k(c*)`` in cell ``c* = argmax_c F_k(c)``). The cell
map sums, with the constant, to the logit, up to float rounding. Grad-CAM instead weights channels by
the mean gradient, which for this head is a constant per channel, and spreads the max-pooled
evidence over every cell (Grad-CAM of a pooled head is plain CAM, Zhou et al. 2016, with the max
part smeared). Written by hand: no library decomposes a max-pooled head (captum's LayerGradCam and
LayerConductance do not, and LRP rules for max pooling redistribute by winner-take-all only when
the max layer is a module, which here it is not).

The input-grid map is a mass-preserving trilinear upsampling of the cell map (each cell's value is
divided by the sum of its interpolation weights), so the map on the input grid also sums, with the
constant, to the logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from numpy.typing import NDArray

from htct.attribution.gradcam import as_batch

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class PooledCam:
    """Exact decomposition of the HT logit of a batch of scans.

    Attributes:
        cells: contribution of each cell of the last feature map, ``[B, d, h, w]`` (``[B, 1, h, w]``
            for a 2D-conv model).
        constant: the part of the logit that belongs to no cell (biases, batch-norm shifts), ``[B]``.
        logit: the model's logit, ``[B]``.
        voxels: the cell map upsampled to the input grid, ``[B, D, H, W]``, mass-preserving: its sum
            equals the cells' sum.
    """

    cells: torch.Tensor
    constant: torch.Tensor
    logit: torch.Tensor
    voxels: torch.Tensor


def _linear_upsampling_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``[n_out, n_in]`` weights of 1-D linear interpolation (align_corners=False, as F.interpolate)."""
    import torch
    from torch.nn import functional as F

    eye = torch.eye(n_in, dtype=torch.float64).unsqueeze(1)  # n_in signals of length n_in
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[:, 0].T


def mass_preserving_upsample(cells: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """Trilinear upsampling ``[B, d, h, w] -> [B, D, H, W]`` that keeps each cell's total.

    Trilinear interpolation is a separable linear map ``U = Ud x Uh x Uw``; dividing each cell by the
    column sum of ``U`` (the product of the three axes' column sums) before interpolating makes every
    cell contribute exactly its value to the upsampled map, for any ratio of grid sizes.
    """
    from torch.nn import functional as F

    column_sums = [
        _linear_upsampling_matrix(n_in, n_out).sum(0)
        for n_in, n_out in zip(cells.shape[1:], size, strict=True)
    ]
    weight = column_sums[0][:, None, None] * column_sums[1][None, :, None] * column_sums[2][None, None, :]
    scaled = (cells.double() / weight.to(cells.device)).unsqueeze(1)
    return F.interpolate(scaled, size=size, mode="trilinear", align_corners=False)[:, 0].to(cells.dtype)


def _head_parts(head: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """Per-pooled-feature weight ``w * scale``, the constant, and the pooling mode of an HTPredictor."""
    import torch
    from torch import nn

    weight = head.fc.weight.detach().double()[0]
    constant = (
        head.fc.bias.detach().double()[0]
        if head.fc.bias is not None
        else torch.zeros((), dtype=torch.float64)
    )
    norm = head.norm
    if isinstance(norm, nn.BatchNorm1d):
        scale = norm.weight.detach().double() / torch.sqrt(norm.running_var.double() + norm.eps)
        shift = norm.bias.detach().double() - norm.running_mean.double() * scale
        constant = constant + (weight * shift).sum()
        weight = weight * scale
    elif not isinstance(norm, nn.Identity):
        raise TypeError(f"pooled_cam cannot decompose a {type(norm).__name__} in the HT predictor")
    return weight, constant, head.pool.mode


def pooled_cam(model: nn.Module, volume: torch.Tensor | NDArray) -> PooledCam:
    """Decompose the HT logit of a CTNet over its last feature map, exactly (see the module docstring).

    Args:
        model: a CTNet (a model whose ``head`` is an :class:`htct.models.ctnet.HTPredictor`); put in
            eval mode. A fold ensemble is decomposed by :func:`pooled_cam_map` (member by member).
        volume: one scan ``[C, D, H, W]`` or a batch ``[B, C, D, H, W]``.

    Returns:
        The decomposition (tensors on the model's device, float64 for cells and constant).

    Example:
        >>> import torch
        >>> from htct.models import create_model
        >>> model = create_model("ctnet").eval()
        >>> torch.nn.init.normal_(model.head.fc.weight)  # the fresh model's fc layer is zero
        >>> cam = pooled_cam(model, torch.rand(2, 1, 28, 32, 32))
        >>> bool(torch.allclose(cam.cells.sum((1, 2, 3)) + cam.constant, cam.logit.double(), atol=1e-5))
        True
    """
    import torch

    head = getattr(model, "head", None)
    if head is None or not hasattr(head, "pool") or not hasattr(head, "fc"):
        raise TypeError(f"{type(model).__name__} has no pooled HT predictor head to decompose")
    x, _ = as_batch(volume, model)
    model.eval()
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].detach()))
    try:
        with torch.no_grad():
            logit = model(x).detach()[:, 0]
    finally:
        hook.remove()
    features = captured[0].double()  # [B, K, d, h, w] or [B, K, h, w]
    if features.dim() == 4:
        features = features.unsqueeze(2)  # 2D conv: one "slice" of cells
    batch, channels = features.shape[:2]
    grid = features.shape[2:]
    flat = features.flatten(2)  # [B, K, n_cells]
    weight, constant, mode = _head_parts(head)
    cells = torch.zeros(batch, flat.shape[2], dtype=torch.float64, device=flat.device)
    offset = 0
    if mode in ("avg", "avgmax"):
        cells += torch.einsum("k,bkc->bc", weight[:channels], flat) / flat.shape[2]
        offset = channels
    if mode in ("max", "avgmax"):
        peak = flat.argmax(dim=2)  # [B, K]: the cell that holds each channel's maximum
        value = flat.gather(2, peak.unsqueeze(2))[..., 0] * weight[offset : offset + channels]
        cells.scatter_add_(1, peak, value)
    cells = cells.view(batch, *grid)
    depth, height, width = x.shape[-3:]
    if grid[0] == 1 and getattr(model, "conv_mode", "3d") == "2d":
        in_plane = mass_preserving_upsample(cells, (1, height, width))
        voxels = in_plane.expand(-1, depth, -1, -1) / depth  # the same map on every slice, same total
    else:
        voxels = mass_preserving_upsample(cells, (depth, height, width))
    return PooledCam(cells=cells, constant=constant.expand(batch).clone(), logit=logit, voxels=voxels)


def pooled_cam_map(model: nn.Module, volume: torch.Tensor | NDArray) -> torch.Tensor:
    """The pooled CAM on the input grid, ``[B, D, H, W]`` float32; a fold ensemble gives the mean of
    its members' maps (each exact for its member's logit; their mean decomposes the mean logit)."""
    import torch

    members = getattr(model, "members", None)
    if members is not None and getattr(model, "head", None) is None:
        return torch.stack([pooled_cam_map(member, volume) for member in members]).mean(0)
    return pooled_cam(model, volume).voxels.float()
