"""Small convolutional classifiers for 2-D images (e.g. 8x8 digits) and 1-D multichannel
signals (e.g. ETTh1 windows): the targets that adversarial purification defends."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvClassifier"]


class ConvClassifier(nn.Module):
    """Two conv blocks (conv-ReLU-conv-ReLU, the first followed by 2x max-pooling), adaptive
    pooling to ``pool`` cells per axis, and a two-layer head. ``forward(x) -> logits (batch, n_classes)``."""

    def __init__(self, in_channels: int, n_classes: int, dims: int = 2, width: int = 32, pool: int = 4):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 (signals) or 2 (images), got {dims}")
        if n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        maxpool = nn.MaxPool1d if dims == 1 else nn.MaxPool2d
        adapt = nn.AdaptiveAvgPool1d if dims == 1 else nn.AdaptiveAvgPool2d
        self.config = {"in_channels": in_channels, "n_classes": n_classes, "dims": dims, "width": width, "pool": pool}
        self.dims = dims
        self.features = nn.Sequential(
            conv(in_channels, width, 3, padding=1), nn.ReLU(), conv(width, width, 3, padding=1), nn.ReLU(), maxpool(2),
            conv(width, 2 * width, 3, padding=1), nn.ReLU(), conv(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
            adapt(pool))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * pool ** dims, 128), nn.ReLU(), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.dims + 2:
            raise ValueError(f"ConvClassifier(dims={self.dims}) expects input of {self.dims + 2} dimensions, "
                             f"got shape {tuple(x.shape)}")
        return self.head(self.features(x))
