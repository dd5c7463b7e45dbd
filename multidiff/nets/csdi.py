"""CSDI's conditional score network (Tashiro et al., NeurIPS 2021).

Input: observed values and noisy targets stacked as two channels over a (features K, time L)
grid. Each residual block adds the diffusion-step embedding, runs one transformer layer along
time (for every feature) and one along features (for every time step), adds the side
information (time embedding, learned feature embedding, conditional mask, and optionally calendar
features such as hour of day, as GluonTS' models use them) and a gated
activation, as DiffWave. Output: the predicted noise on the (K, L) grid.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .embeddings import DiffusionStepEmbedding, sinusoidal_embedding

__all__ = ["CSDINet"]


def _linear(cin: int, cout: int, zero: bool = False) -> nn.Linear:
    layer = nn.Linear(cin, cout)
    if zero:
        nn.init.zeros_(layer.weight)
    else:
        nn.init.kaiming_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _transformer(channels: int, heads: int) -> nn.TransformerEncoderLayer:
    # no dropout: CSDI's 0.1 makes a training step ~5x slower on a CPU, and the short CPU
    # budgets this package trains for underfit rather than overfit
    return nn.TransformerEncoderLayer(d_model=channels, nhead=heads, dim_feedforward=64, activation="gelu",
                                      batch_first=True, dropout=0.0)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, side_dim: int, emb_dim: int, heads: int):
        super().__init__()
        self.step_proj = nn.Linear(emb_dim, channels)
        self.cond_proj = _linear(side_dim, 2 * channels)
        self.mid_proj = _linear(channels, 2 * channels)
        self.out_proj = _linear(channels, 2 * channels)
        self.time_layer = _transformer(channels, heads)
        self.feature_layer = _transformer(channels, heads)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, emb: torch.Tensor):
        """``x``: (B, K, L, C) channels-last; ``cond``: this block's projected side information."""
        b, k, l, c = x.shape
        y = x + self.step_proj(emb)[:, None, None, :]
        if l > 1:  # attention along time, for every feature
            y = self.time_layer(y.reshape(b * k, l, c)).reshape(b, k, l, c)
        if k > 1:  # attention along features, for every time step
            y = self.feature_layer(y.transpose(1, 2).reshape(b * l, k, c)).reshape(b, l, k, c).transpose(1, 2)
        gate, filt = (self.mid_proj(y) + cond).chunk(2, dim=-1)
        residual, skip = self.out_proj(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, dim=-1)
        return (x + residual) / math.sqrt(2.0), skip


class CSDINet(nn.Module):
    """eps-network over a (K, L) grid. CSDI defaults: 4 layers, 64 channels, 8 heads, 128-d step
    embedding, 128-d time embedding, 16-d feature embedding. Computed channels-last with linear
    layers (on a CPU several times faster than CSDI's 1x1 convolutions)."""

    def __init__(self, n_features: int, channels: int = 64, layers: int = 4, heads: int = 8,
                 step_emb_dim: int = 128, time_emb_dim: int = 128, feature_emb_dim: int = 16,
                 time_feature_dim: int = 0):
        super().__init__()
        self.n_features, self.time_emb_dim, self.feature_emb_dim = n_features, time_emb_dim, feature_emb_dim
        self.time_feature_dim = time_feature_dim  # calendar features per time step (0: none)
        self.step_embedding = DiffusionStepEmbedding(step_emb_dim)
        self.feature_embedding = nn.Embedding(n_features, feature_emb_dim)
        side_dim = time_emb_dim + feature_emb_dim + 1 + time_feature_dim
        self.input_proj = _linear(2, channels)
        self.blocks = nn.ModuleList(_ResidualBlock(channels, side_dim, step_emb_dim, heads) for _ in range(layers))
        self.skip_proj = _linear(channels, channels)
        self.output_proj = _linear(channels, 1, zero=True)

    def side_info(self, positions: torch.Tensor, cond_mask: torch.Tensor,
                  time_features: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Side information (time embedding of ``positions`` (B, L), feature embedding, the
        conditional mask (B, K, L), and ``time_features`` (B, L, time_feature_dim) when the net was
        built with them) already projected by each block: a list of (B, K, L, 2C).
        It does not depend on the noisy input, so a sampler computes it once, not once per step.
        The projection of the concatenation is split by parts, never materialising (B, K, L, 145)."""
        b, k, l = cond_mask.shape
        d_t, d_f, d_c = self.time_emb_dim, self.feature_emb_dim, self.time_feature_dim
        if (time_features is None) != (d_c == 0):
            raise ValueError(f"this network was built with time_feature_dim={d_c}: pass time_features of shape "
                             f"(B, L, {d_c})" if d_c else "this network was built without time features")
        if d_c and tuple(time_features.shape) != (b, l, d_c):
            raise ValueError(f"time_features must have shape {(b, l, d_c)}, got {tuple(time_features.shape)}")
        time = sinusoidal_embedding(positions, self.time_emb_dim)  # (B, L, Dt)
        feat = self.feature_embedding.weight[:k]                    # (K, Df)
        mask = cond_mask.to(time.dtype)[..., None]                  # (B, K, L, 1)
        out = []
        for block in self.blocks:
            w, bias = block.cond_proj.weight, block.cond_proj.bias  # (2C, Dt + Df + 1 + Dc)
            t_part = time @ w[:, :d_t].T                             # (B, L, 2C)
            if d_c:
                t_part = t_part + time_features.to(time.dtype) @ w[:, d_t + d_f + 1:].T
            f_part = feat @ w[:, d_t:d_t + d_f].T + bias             # (K, 2C)
            out.append(t_part[:, None] + f_part[None, :, None] + mask * w[:, d_t + d_f])
        return out

    def forward(self, x: torch.Tensor, t: torch.Tensor, side: list[torch.Tensor]) -> torch.Tensor:
        """``x``: (B, 2, K, L) conditional input; ``t``: (B,) step; ``side``: from :meth:`side_info`."""
        h = torch.relu(self.input_proj(x.permute(0, 2, 3, 1)))  # (B, K, L, C)
        emb = self.step_embedding(t)
        skips = 0
        for block, cond in zip(self.blocks, side):
            h, skip = block(h, cond, emb)
            skips = skips + skip
        out = torch.relu(self.skip_proj(skips / math.sqrt(len(self.blocks))))
        return self.output_proj(out)[..., 0]
