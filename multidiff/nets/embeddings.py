"""Embeddings shared by the networks: sinusoidal positions and diffusion-step embeddings."""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["sinusoidal_embedding", "DiffusionStepEmbedding"]


def sinusoidal_embedding(pos: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer sinusoidal embedding (Vaswani et al. 2017) of positions ``pos`` (any shape)
    -> ``pos.shape + (dim,)``, sines then cosines."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=pos.device, dtype=torch.float32) / half)
    args = pos.float().unsqueeze(-1) * freqs
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    return torch.nn.functional.pad(emb, (0, dim % 2))


class DiffusionStepEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step followed by a two-layer SiLU MLP, as in
    DiffWave / CSDI / TimeGrad. ``scale`` multiplies continuous times in [0, 1] (e.g. 1000)
    so that one embedding serves discrete indices and VP-SDE times."""

    def __init__(self, dim: int = 128, out_dim: int | None = None, scale: float = 1.0):
        super().__init__()
        self.dim, self.scale = dim, scale
        out_dim = out_dim or dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim), nn.SiLU())

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t.float() * self.scale, self.dim))
