"""A network over (columns K x time L) grids that does not depend on the number or order of columns.

No column embedding: each cell carries what it knows (its value, whether it is given, the linear
and PCHIP interpolations through the given values, how far the nearest given values are), a transformer
block attends along time for every column and along columns for every time step (equivariant to
their order, so one set of weights serves any frame, as TSPulse and Tiny Time Mixers serve any
channel count; Ekambaram et al. 2024, 2025). The encoder runs once per window and gives a
per-cell code ``h``; two heads read it:

- ``point_head``: the residual over the interpolation, trained with L1 (the conditional median);
- :class:`DiffusionHead`: a small denoiser over the residual around that point, conditioned on
  ``h`` (the per-token diffusion head of Li et al. 2024, "Autoregressive image generation without
  vector quantization"), with a depthwise convolution along time and a mean over columns so that
  samples of neighbouring cells are drawn jointly. Sampling runs only this head at every step.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .embeddings import DiffusionStepEmbedding, sinusoidal_embedding

__all__ = ["ColumnAgnosticEncoder", "DiffusionHead", "N_CELL_FEATURES"]

N_CELL_FEATURES = 12  # see multidiff.tasks.imputation.column_model.window_features


class _Attention(nn.Module):
    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, S, C) -> (N, S, C), attention over the S axis."""
        n, s, c = x.shape
        q, k, v = self.qkv(x).reshape(n, s, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(n, s, c))


class _Block(nn.Module):
    """Pre-norm transformer block: attention along time, attention along columns, feed-forward."""

    def __init__(self, channels: int, heads: int, ff: int):
        super().__init__()
        self.norm_time, self.norm_cols, self.norm_ff = (nn.LayerNorm(channels) for _ in range(3))
        self.time_attention = _Attention(channels, heads)
        self.column_attention = _Attention(channels, heads)
        self.ff = nn.Sequential(nn.Linear(channels, ff), nn.GELU(), nn.Linear(ff, channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, k, l, c = h.shape
        h = h + self.time_attention(self.norm_time(h).reshape(b * k, l, c)).reshape(b, k, l, c)
        y = self.norm_cols(h).transpose(1, 2).reshape(b * l, k, c)
        h = h + self.column_attention(y).reshape(b, l, k, c).transpose(1, 2)
        return h + self.ff(self.norm_ff(h))


class ColumnAgnosticEncoder(nn.Module):
    """Per-cell features (B, K, L, N_CELL_FEATURES) -> codes (B, K, L, channels) and the point
    head's residual (B, K, L). Equivariant to the order of the K columns."""

    def __init__(self, channels: int = 64, layers: int = 3, heads: int = 4, ff: int = 128):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be a multiple of heads ({heads})")
        self.channels = channels
        self.input_proj = nn.Linear(N_CELL_FEATURES, channels)
        self.blocks = nn.ModuleList(_Block(channels, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(channels)
        self.point_head = nn.Linear(channels, 1)
        nn.init.zeros_(self.point_head.weight)
        nn.init.zeros_(self.point_head.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        l = features.shape[2]
        pos = sinusoidal_embedding(torch.arange(l, device=features.device), self.channels)  # (L, C)
        h = self.input_proj(features) + pos
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return h, self.point_head(h)[..., 0]


class _HeadBlock(nn.Module):
    """adaLN-modulated residual MLP with a depthwise convolution along time and a column mean."""

    def __init__(self, channels: int, emb: int, kernel: int = 5):
        super().__init__()
        self.norm = nn.LayerNorm(channels, elementwise_affine=False)
        self.modulation = nn.Linear(emb, 2 * channels)
        self.time_mix = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.column_mix = nn.Linear(channels, channels)
        self.mlp = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        b, k, l, c = h.shape
        scale, shift = self.modulation(emb)[:, None, None].chunk(2, dim=-1)
        y = self.norm(h) * (1 + scale) + shift
        y = y + self.time_mix(y.reshape(b * k, l, c).transpose(1, 2)).transpose(1, 2).reshape(b, k, l, c)
        y = y + self.column_mix(y.mean(dim=1, keepdim=True))
        return h + self.mlp(y)


class DiffusionHead(nn.Module):
    """Denoiser of the residual grid: ``(x_t (B, K, L), t (B,), target mask (B, K, L), context
    (B, K, L, channels)) -> prediction (B, K, L)``. The context is projected once per window by
    :meth:`project` and reused at every sampler step."""

    def __init__(self, in_channels: int = 64, channels: int = 32, layers: int = 2, step_emb_dim: int = 64):
        super().__init__()
        self.reach = layers * (5 // 2)  # rows a cell's output depends on, on each side (the time convolutions)
        self.context_proj = nn.Linear(in_channels, channels)
        self.input_proj = nn.Linear(2, channels)
        self.step_embedding = DiffusionStepEmbedding(step_emb_dim)
        self.blocks = nn.ModuleList(_HeadBlock(channels, step_emb_dim) for _ in range(layers))
        self.out_norm = nn.LayerNorm(channels)
        self.output_proj = nn.Linear(channels, 1)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        return self.context_proj(h)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, target: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        emb = self.step_embedding(t)
        h = context + self.input_proj(torch.stack([x_t * target, target], dim=-1))
        for block in self.blocks:
            h = block(h, emb)
        return self.output_proj(F.gelu(self.out_norm(h)))[..., 0]
