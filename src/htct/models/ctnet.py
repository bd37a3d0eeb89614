"""CTNet (Zhang et al. 2026): convolutional stem, residual blocks 1 and 2, and the HT predictor head.

The paper's figure gives the building blocks (stem lifting the 28 slices to more feature channels,
residual block1 with identity shortcut, residual block2 with a strided 1x1 projection shortcut, and
a pooling + fully connected "HT predictor"); widths, depths and strides are ours, sized so that the
model trains on two CPU cores at 28x96x96 within the demo budget (`width` scales it up for GPUs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from htct.models.registry import register_model

ConvMode = Literal["3d", "2d"]
PoolMode = Literal["avg", "max", "avgmax"]

_LAYERS = {
    "3d": (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d),
    "2d": (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d),
}


def _stride(conv: ConvMode, stride: int) -> int | tuple[int, int, int]:
    return stride if conv == "2d" else (stride, stride, stride)


class ResidualBlock1(nn.Module):
    """Residual block1: two 3x3(x3) conv-BN layers with an identity shortcut (input shape == output shape).

    Args:
        channels: input and output feature channels.
        conv: "3d" (slices are depth) or "2d" (slices are channels).
    """

    def __init__(self, channels: int, conv: ConvMode = "3d") -> None:
        super().__init__()
        conv_cls, norm_cls, _ = _LAYERS[conv]
        self.conv1 = conv_cls(channels, channels, 3, padding=1, bias=False)
        self.bn1 = norm_cls(channels)
        self.conv2 = conv_cls(channels, channels, 3, padding=1, bias=False)
        self.bn2 = norm_cls(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class ResidualBlock2(nn.Module):
    """Residual block2: strided conv-BN pair with a projection shortcut (strided 1x1 conv + BN).

    Used where the number of channels or the grid size changes, so the identity cannot be added.

    Args:
        in_channels: input feature channels.
        out_channels: output feature channels.
        stride: downsampling factor of the block (every axis, depth included in 3D).
        conv: "3d" or "2d".
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, conv: ConvMode = "3d") -> None:
        super().__init__()
        conv_cls, norm_cls, _ = _LAYERS[conv]
        s = _stride(conv, stride)
        self.conv1 = conv_cls(in_channels, out_channels, 3, stride=s, padding=1, bias=False)
        self.bn1 = norm_cls(out_channels)
        self.conv2 = conv_cls(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = norm_cls(out_channels)
        self.projection = nn.Sequential(
            conv_cls(in_channels, out_channels, 1, stride=s, bias=False), norm_cls(out_channels)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.projection(x))


class GlobalPool(nn.Module):
    """Global pooling over the grid: "avg", "max", or "avgmax" (both, concatenated along channels).

    The average of a lesion-detecting feature grows with the lesion's volume; the maximum keeps a
    small focal sign (a hyperdense artery, a small infarct) from being diluted by the whole brain.
    """

    def __init__(self, mode: PoolMode = "avgmax", conv: ConvMode = "3d") -> None:
        super().__init__()
        if mode not in ("avg", "max", "avgmax"):
            raise ValueError(f"pool must be 'avg', 'max' or 'avgmax', not {mode!r}")
        self.mode: PoolMode = mode
        self.dims = (2, 3, 4) if conv == "3d" else (2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        if self.mode in ("avg", "avgmax"):
            pooled.append(x.mean(dim=self.dims))
        if self.mode in ("max", "avgmax"):
            pooled.append(x.amax(dim=self.dims))
        return torch.cat(pooled, dim=1)


class HTPredictor(nn.Module):
    """The HT predictor head: global pooling, dropout and a fully connected layer -> one logit.

    Args:
        in_features: feature channels of the last stage.
        conv: "3d" or "2d".
        dropout: dropout before the fully connected layer.
        pool: "avg", "max" or "avgmax" global pooling (see GlobalPool).
        pooled_norm: batch-normalise the pooled features (BatchNorm1d) before dropout and FC.
    """

    def __init__(
        self,
        in_features: int,
        conv: ConvMode = "3d",
        dropout: float = 0.3,
        pool: PoolMode = "avgmax",
        pooled_norm: bool = True,
    ) -> None:
        super().__init__()
        self.pool = GlobalPool(pool, conv=conv)
        n_pooled = in_features * (2 if pool == "avgmax" else 1)
        # Why: an infarct fills ~0.1-1% of the grid, so its share of an averaged feature differs
        # between scans by ~1e-3; without standardising the pooled features the fully connected
        # weight must grow to ~1e3 to turn that into a logit, which AdamW (steps of ~lr) cannot do
        # in a few hundred steps.
        self.norm = nn.BatchNorm1d(n_pooled) if pooled_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(n_pooled, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.norm(self.pool(x))))


# Array units of the 40/80 HU arrays: 10-50 HU (stroke window) and 0-80 HU (the whole brain window).
STROKE_AND_BRAIN_WINDOWS = ((0.125, 0.625), (0.0, 1.0))


class InputWindow(nn.Module):
    """Fixed display windows inside the arrays' brain window, each clamped and rescaled to [-1, 1].

    The arrays are windowed at 40/80 HU ([0, 80] HU -> [0, 1]), where an early infarct darkens the
    parenchyma by only ~0.05-0.1 while skull, air and CSF edges span the whole range and dominate the
    stem's activations and its normalisation statistics. Clamping to `low`-`high` (array units) first
    is the soft-copy reading practice of a narrow stroke window (Lev et al., Radiology 1999), and
    rescaling to [-1, 1] gives the infarct contrast about four times the weight. Several windows
    give one channel each (per input channel), as a reader switches windows: a stroke window for the
    hypodensity and the full brain window, where a hyperdense artery (~70-80 HU) is not clipped
    away as it is at the stroke window's 50 HU. Fixed, no parameters.

    Args:
        low: lower clamp in array units (0.125 = 10 HU for the 40/80 window); or, with `high`
            None, the windows themselves: one (low, high) pair or a sequence of pairs (CTNet's
            `input_window`), one output channel each.
        high: upper clamp in array units (0.625 = 50 HU).
    """

    def __init__(
        self, low: float | Sequence[float] | Sequence[Sequence[float]] = 0.125, high: float | None = 0.625
    ) -> None:
        super().__init__()
        if high is not None:
            pairs = [(low, high)]
        elif len(low) and not isinstance(low[0], Sequence):
            pairs = [low]  # a single (low, high) pair
        else:
            pairs = list(low)
        self.windows: list[tuple[float, float]] = []
        for pair in pairs:
            lo, hi = (float(v) for v in pair)
            if not hi > lo:
                raise ValueError(f"input window needs high > low, got {lo}, {hi}")
            self.windows.append((lo, hi))
        if not self.windows:
            raise ValueError("input window needs at least one (low, high) pair")

    @property
    def n_windows(self) -> int:
        """Output channels per input channel."""
        return len(self.windows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = [(x.clamp(lo, hi) - (lo + hi) / 2) / ((hi - lo) / 2) for lo, hi in self.windows]
        return views[0] if len(views) == 1 else torch.cat(views, dim=1)

    def extra_repr(self) -> str:
        return ", ".join(f"low={lo}, high={hi}" for lo, hi in self.windows)


class CTNet(nn.Module):
    """CTNet for one non-contrast head CT of `n_slices` axial slices -> one HT logit.

    Input [B, C, n_slices, H, W] (C = HU windows). With `conv="3d"` the slices are the depth of 3D
    convolutions; with `conv="2d"` the C x n_slices planes become the channels of 2D convolutions.

    Args:
        in_channels: number of HU windows C.
        n_slices: number of axial slices (28 in the paper).
        conv: "3d" or "2d".
        width: feature channels after the stem; stage k has width * 2**k channels. Default 8 (3D)
            or 32 (2D), sized for CPU training at 96x96.
        blocks_per_stage: residual blocks per stage; the first block of every stage after the first
            is a block2 (stride 2, channels doubled), all others are block1.
        dropout: dropout before the fully connected layer of the HT predictor.
        pool: global pooling of the HT predictor, "avg", "max" or "avgmax" (see GlobalPool).
        input_window: (low, high) clamp of the input in array units before the stem, rescaled to
            [-1, 1], or several such pairs, one channel each (see InputWindow). Default: the stroke
            window (10-50 HU) and the whole brain window (0-80 HU). None feeds the arrays unchanged.
        pooled_norm: batch-normalise the pooled features before the fully connected layer.
        stem_pool: end the stem with a 3x3 max-pooling of stride 2 (in-plane). Without it stage 1
            works on the stem convolution's grid (half the input size instead of a quarter): about
            twice the compute, and finer detail (a 3 mm hyperdense artery, a small infarct) reaches
            the residual blocks.

    Attributes:
        cam_layer: the last residual stage, whose output feeds the HT predictor (for Grad-CAM).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_slices: int = 28,
        conv: ConvMode = "3d",
        width: int | None = None,
        blocks_per_stage: Sequence[int] = (1, 2, 2),
        dropout: float = 0.3,
        pool: PoolMode = "avgmax",
        input_window: Sequence[float] | Sequence[Sequence[float]] | None = STROKE_AND_BRAIN_WINDOWS,
        pooled_norm: bool = True,
        stem_pool: bool = False,
    ) -> None:
        super().__init__()
        if conv not in _LAYERS:
            raise ValueError(f"conv must be '3d' or '2d', not {conv!r}")
        self.conv_mode: ConvMode = conv
        if input_window is None:
            self.input_window, n_windows = nn.Identity(), 1
        else:
            self.input_window = InputWindow(input_window, None)
            n_windows = self.input_window.n_windows
        in_channels *= n_windows
        self.n_slices = n_slices
        width = width or (8 if conv == "3d" else 32)
        conv_cls, norm_cls, pool_cls = _LAYERS[conv]
        if conv == "3d":
            # In-plane stride only: 28 slices of 5 mm are already coarse along z.
            stem_conv = conv_cls(
                in_channels, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False
            )
            stem_max = pool_cls((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        else:
            stem_conv = conv_cls(in_channels * n_slices, width, 7, stride=2, padding=3, bias=False)
            stem_max = pool_cls(3, stride=2, padding=1)
        stem_layers = [stem_conv, norm_cls(width), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem_layers, *([stem_max] if stem_pool else []))

        stages: list[nn.Module] = []
        channels = width
        for stage_index, n_blocks in enumerate(blocks_per_stage):
            blocks: list[nn.Module] = []
            for block_index in range(n_blocks):
                if stage_index > 0 and block_index == 0:
                    blocks.append(ResidualBlock2(channels, channels * 2, stride=2, conv=conv))
                    channels *= 2
                else:
                    blocks.append(ResidualBlock1(channels, conv=conv))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = HTPredictor(channels, conv=conv, dropout=dropout, pool=pool, pooled_norm=pooled_norm)
        self.cam_layer = self.stages[-1]
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_mode == "2d":
            x = x.flatten(1, 2)  # [B, C, D, H, W] -> [B, C*D, H, W]: slices become channels
        return self.head(self.stages(self.stem(self.input_window(x))))


def _init_weights(model: nn.Module) -> None:
    """He initialisation of the convolutions (ReLU network), BN at scale 1 and shift 0, and a zero
    fully connected layer in the HT predictor, so that training starts from p(HT) = 0.5 for every scan.

    Without the zero FC layer, the pooled (max) features of a freshly initialised network gave
    first-epoch logits of several units and a training loss far above chance (1.4 vs 0.86).
    We tried zero-initialising the last BN of each residual branch (Goyal et al. 2017): with the
    narrow CPU-sized CTNet the loss then barely moved in 10 epochs on the toy cohort, so we do not.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, HTPredictor):
            nn.init.zeros_(module.fc.weight)
            nn.init.zeros_(module.fc.bias)


@register_model(
    "ctnet",
    display_name="CTNet",
    default_options={"conv": "3d"},
    reference="Zhang et al., Front. Neurosci. 2026, doi:10.3389/fnins.2025.1753071",
)
def ctnet(in_channels: int = 1, n_slices: int = 28, conv: ConvMode = "3d", **kwargs: object) -> CTNet:
    """CTNet; `conv` ("3d" or "2d") is config.yaml `train.model_options: {ctnet: {conv: 2d}}`."""
    return CTNet(in_channels=in_channels, n_slices=n_slices, conv=conv, **kwargs)
