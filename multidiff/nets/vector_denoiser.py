"""A residual MLP noise predictor for flat vectors, e.g. the shape latents of a latent diffusion
prior (as LION's global-latent prior, Zeng et al. 2022, in a smaller form).

``eps = net(z_t, t)`` for ``z_t`` (B, D) and one diffusion step per row. Pre-norm residual blocks,
each modulated by the step embedding (FiLM), and a zero-initialised output layer, so training starts
from the zero-noise predictor.
"""
from __future__ import annotations

import torch
from torch import nn

from .embeddings import DiffusionStepEmbedding

__all__ = ["VectorDenoiser"]


class _Block(nn.Module):
    def __init__(self, width: int, time_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = nn.Linear(time_dim, 2 * width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width))

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(temb).chunk(2, dim=-1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class VectorDenoiser(nn.Module):
    """Noise predictor for (B, dim) vectors at diffusion steps ``t`` (B,)."""

    def __init__(self, dim: int, width: int = 512, layers: int = 3, time_dim: int = 128):
        super().__init__()
        if dim < 1 or width < 1 or layers < 1 or time_dim < 2:
            raise ValueError(f"need dim, width, layers >= 1 and time_dim >= 2, got {dim}, {width}, {layers}, "
                             f"{time_dim}")
        self.dim = dim
        self.time = DiffusionStepEmbedding(time_dim)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(_Block(width, time_dim) for _ in range(layers))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (B, {self.dim}), got {tuple(z.shape)}")
        temb = self.time(t)
        h = self.inp(z)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)
