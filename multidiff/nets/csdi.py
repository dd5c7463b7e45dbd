"""CSDI's conditional score network (Tashiro et al., NeurIPS 2021).

Input: observed values and noisy targets stacked as two channels over a (features K, time L)
grid. Each residual block adds the diffusion-step embedding, runs one transformer layer along
time (for every feature) and one along features (for every time step), adds the side
information (time embedding, learned feature embedding, conditional mask) and a gated
activation, as DiffWave. Output: the predicted noise on the (K, L) grid.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .embeddings import DiffusionStepEmbedding, sinusoidal_embedding

__all__ = ["CSDINet"]


def _conv1x1(cin: int, cout: int, zero: bool = False) -> nn.Conv1d:
    conv = nn.Conv1d(cin, cout, 1)
    if zero:
        nn.init.zeros_(conv.weight)
    else:
        nn.init.kaiming_normal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _transformer(channels: int, heads: int) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(d_model=channels, nhead=heads, dim_feedforward=64, activation="gelu",
                                      batch_first=True)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, side_dim: int, emb_dim: int, heads: int):
        super().__init__()
        self.step_proj = nn.Linear(emb_dim, channels)
        self.cond_proj = _conv1x1(side_dim, 2 * channels)
        self.mid_proj = _conv1x1(channels, 2 * channels)
        self.out_proj = _conv1x1(channels, 2 * channels)
        self.time_layer = _transformer(channels, heads)
        self.feature_layer = _transformer(channels, heads)

    @staticmethod
    def _along(layer: nn.Module, y: torch.Tensor, axis: str) -> torch.Tensor:
        b, c, k, l = y.shape
        if axis == "time" and l > 1:
            seq = y.permute(0, 2, 3, 1).reshape(b * k, l, c)
            return layer(seq).reshape(b, k, l, c).permute(0, 3, 1, 2)
        if axis == "feature" and k > 1:
            seq = y.permute(0, 3, 2, 1).reshape(b * l, k, c)
            return layer(seq).reshape(b, l, k, c).permute(0, 3, 2, 1)
        return y

    def forward(self, x: torch.Tensor, side: torch.Tensor, emb: torch.Tensor):
        b, c, k, l = x.shape
        y = x + self.step_proj(emb)[:, :, None, None]
        y = self._along(self.feature_layer, self._along(self.time_layer, y, "time"), "feature")
        y = self.mid_proj(y.reshape(b, c, k * l)) + self.cond_proj(side.reshape(b, side.shape[1], k * l))
        gate, filt = y.chunk(2, dim=1)
        y = self.out_proj(torch.sigmoid(gate) * torch.tanh(filt))
        residual, skip = y.chunk(2, dim=1)
        return (x + residual.reshape(b, c, k, l)) / math.sqrt(2.0), skip.reshape(b, c, k, l)


class CSDINet(nn.Module):
    """eps-network over a (K, L) grid. CSDI defaults: 4 layers, 64 channels, 8 heads, 128-d step
    embedding, 128-d time embedding, 16-d feature embedding."""

    def __init__(self, n_features: int, channels: int = 64, layers: int = 4, heads: int = 8,
                 step_emb_dim: int = 128, time_emb_dim: int = 128, feature_emb_dim: int = 16):
        super().__init__()
        self.n_features, self.time_emb_dim = n_features, time_emb_dim
        self.step_embedding = DiffusionStepEmbedding(step_emb_dim)
        self.feature_embedding = nn.Embedding(n_features, feature_emb_dim)
        side_dim = time_emb_dim + feature_emb_dim + 1
        self.input_proj = _conv1x1(2, channels)
        self.blocks = nn.ModuleList(_ResidualBlock(channels, side_dim, step_emb_dim, heads) for _ in range(layers))
        self.skip_proj = _conv1x1(channels, channels)
        self.output_proj = _conv1x1(channels, 1, zero=True)

    def side_info(self, positions: torch.Tensor, cond_mask: torch.Tensor) -> torch.Tensor:
        """(B, side_dim, K, L): time embedding of ``positions`` (B, L), feature embedding, mask."""
        b, k, l = cond_mask.shape
        time = sinusoidal_embedding(positions, self.time_emb_dim)  # (B, L, D)
        time = time[:, None].expand(b, k, l, -1)
        feat = self.feature_embedding.weight[:k][None, :, None].expand(b, k, l, -1)
        side = torch.cat([time, feat], dim=-1).permute(0, 3, 1, 2)
        return torch.cat([side, cond_mask[:, None].to(side)], dim=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        """``x``: (B, 2, K, L) conditional input; ``t``: (B,) step; ``side``: from :meth:`side_info`."""
        b, _, k, l = x.shape
        h = torch.relu(self.input_proj(x.reshape(b, 2, k * l))).reshape(b, -1, k, l)
        emb = self.step_embedding(t)
        skips = 0
        for block in self.blocks:
            h, skip = block(h, side, emb)
            skips = skips + skip
        out = skips.reshape(b, -1, k * l) / math.sqrt(len(self.blocks))
        out = self.output_proj(torch.relu(self.skip_proj(out)))
        return out.reshape(b, k, l)
