"""The two comparison models of the paper, re-implemented for 3D head CT (28 slices): see docs/models.md.

- `wozniak2023`: Woźniak, Siłka, Wieczorek, Neural Comput. Appl. 35:14611 (2023), a CNN trained
  together with a parallel "classic" fully connected network, the correlation learning mechanism
  (CLM), that learns which convolution/pooling filters matter.
- `soundari2022`: Soundari D V et al. (2022), a plain CNN (conv-pool blocks + dense layers) for
  CT lung-cancer detection.

Neither publication gives every layer; what we took from them and what is our reading is listed in
docs/models.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from htct.models.registry import register_model


class ConvPoolBlock(nn.Module):
    """Conv3d 3x3x3 -> BN -> ReLU -> MaxPool3d; the unit both baselines stack."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d(pool, stride=pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


# Pooling per block: in-plane first, so the 28 coarse slices are reduced later than the 96x96 plane.
_POOLS: tuple[tuple[int, int, int], ...] = ((1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2))


class CorrelationLearningCNN(nn.Module):
    """CNN with the correlation learning mechanism (CLM) of Woźniak et al.

    The main CNN is a stack of conv-pool blocks. Beside it a classic (fully connected) network reads
    the pooled responses of each block (global average per filter) and returns one weight in (0, 1)
    per filter of the next block's convolution; the next block's feature maps are multiplied by
    these weights. The support network is trained jointly with the CNN, so it learns which filters
    matter for the decision. The classifier is a dense layer on the pooled last block.

    Args:
        in_channels: number of HU windows.
        n_slices: number of axial slices (not needed by the layers; kept for the registry signature).
        filters: filters per conv-pool block.
        hidden: neurons in the hidden layer of each support (classic) network.
        dropout: dropout before the output layer.

    Attributes:
        cam_layer: the last conv-pool block (for Grad-CAM).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_slices: int = 28,
        filters: Sequence[int] = (8, 16, 32, 64),
        hidden: int = 32,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        channels = [in_channels, *filters]
        self.blocks = nn.ModuleList(
            ConvPoolBlock(channels[i], channels[i + 1], _POOLS[i % len(_POOLS)]) for i in range(len(filters))
        )
        # Support network k reads block k's pooled filter responses and gates block k+1's filters.
        self.support = nn.ModuleList(
            nn.Sequential(
                nn.Linear(filters[i], hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, filters[i + 1]),
                nn.Sigmoid(),
            )
            for i in range(len(filters) - 1)
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(filters[-1], 1)
        self.cam_layer = self.blocks[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks[0](x)
        for block, support in zip(self.blocks[1:], self.support, strict=True):
            filter_weights = support(self.pool(x).flatten(1))
            x = block(x) * filter_weights[:, :, None, None, None]
        return self.fc(self.dropout(self.pool(x).flatten(1)))


class PlainCNN(nn.Module):
    """Plain CNN of Soundari et al.: conv-pool blocks, then dense layers (ReLU, dropout) -> one logit.

    Args:
        in_channels: number of HU windows.
        n_slices: number of axial slices (kept for the registry signature).
        filters: filters per conv-pool block.
        dense: neurons of the hidden dense layer.
        pooled_grid: grid the last feature maps are max-pooled to before flattening, so the dense
            layers do not depend on the input size.
        dropout: dropout between the dense layers.

    Attributes:
        cam_layer: the last conv-pool block (for Grad-CAM).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_slices: int = 28,
        filters: Sequence[int] = (8, 16, 32),
        dense: int = 64,
        pooled_grid: tuple[int, int, int] = (2, 4, 4),
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        channels = [in_channels, *filters]
        self.features = nn.Sequential(
            *(
                ConvPoolBlock(channels[i], channels[i + 1], _POOLS[i % len(_POOLS)])
                for i in range(len(filters))
            )
        )
        self.grid_pool = nn.AdaptiveMaxPool3d(pooled_grid)
        n_flat = filters[-1] * pooled_grid[0] * pooled_grid[1] * pooled_grid[2]
        self.classifier = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(n_flat, dense),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense, 1),
        )
        self.cam_layer = self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.grid_pool(self.features(x)))


@register_model(
    "wozniak2023",
    display_name="Woźniak et al. (2023)",
    cam_layer="cam_layer",
    reference="Woźniak, Siłka, Wieczorek. Neural Comput Appl 35:14611 (2023), doi:10.1007/s00521-021-05841-x",
)
def wozniak2023(in_channels: int = 1, n_slices: int = 28, **kwargs: object) -> CorrelationLearningCNN:
    """CNN + correlation learning mechanism (Woźniak et al. 2023), 3D re-implementation."""
    return CorrelationLearningCNN(in_channels=in_channels, n_slices=n_slices, **kwargs)


@register_model(
    "soundari2022",
    display_name="Soundari et al. (2022)",
    reference="Soundari D V et al. (2022), a convolutional neural network for CT lung-cancer detection",
)
def soundari2022(in_channels: int = 1, n_slices: int = 28, **kwargs: object) -> PlainCNN:
    """Plain conv-pool + dense CNN (Soundari et al. 2022), 3D re-implementation."""
    return PlainCNN(in_channels=in_channels, n_slices=n_slices, **kwargs)
