"""A permutation-equivariant point denoiser in pure torch (no compiled extensions).

``eps = net(x_t, t, features)`` for clouds ``x_t`` of shape (B, N, 3). The design follows the
point networks of the diffusion papers without their CUDA kernels: a DGCNN EdgeConv
(Wang et al. 2019) over the k nearest neighbours of every point gives local geometry, then
residual point-wise blocks, each with a PointNet global max-pool context (Qi et al. 2017) and
FiLM modulation by the diffusion-time embedding (as Luo & Hu 2021 condition every layer on
time). Every operation acts per point or pools symmetrically, so permuting the input points
permutes the output the same way. ``features`` are optional per-point inputs, e.g. the
"known point" flag PVD-style completion uses.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .embeddings import DiffusionStepEmbedding

__all__ = ["PointDenoiser", "knn_max"]


def knn_max(x: torch.Tensor, feats: torch.Tensor, centre: torch.Tensor, k: int) -> torch.Tensor:
    """EdgeConv with a one-layer edge function: ``max_j SiLU(feats_j + centre_i)`` over the ``k``
    nearest neighbours j of each point i in ``x`` (B, N, 3); ``feats``/``centre`` are (B, N, C).

    With ``feats = W1 x`` and ``centre = (W2 - W1) x + b`` this equals DGCNN's
    ``max_j SiLU(W1 (x_j - x_i) + W2 x_i + b)`` at the cost of a gather instead of a per-edge matmul.
    """
    k = min(k, x.shape[1])
    idx = torch.cdist(x, x).topk(k, dim=-1, largest=False).indices  # (B, N, k), includes the point itself
    b, n, c = feats.shape
    flat = idx.reshape(b, n * k, 1).expand(-1, -1, c)
    nbrs = torch.gather(feats, 1, flat).reshape(b, n, k, c)
    return torch.nn.functional.silu(nbrs + centre.unsqueeze(2)).amax(dim=2)


class _Block(nn.Module):
    """Pre-norm residual MLP on every point, with global max-pool context and time FiLM."""

    def __init__(self, channels: int, time_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels, elementwise_affine=False)
        self.film = nn.Linear(time_dim, 2 * channels)  # per-block scale and shift from the time
        self.context = nn.Linear(channels, channels)   # maps the pooled shape feature back to points
        self.mlp = nn.Sequential(nn.Linear(channels, 2 * channels), nn.SiLU(), nn.Linear(2 * channels, channels))

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(temb).unsqueeze(1).chunk(2, dim=-1)
        z = self.norm(h) * (1 + scale) + shift
        z = z + self.context(z.amax(dim=1, keepdim=True))
        return h + self.mlp(z)


class PointDenoiser(nn.Module):
    """Noise predictor for point clouds, equivariant to the order of the points."""

    def __init__(self, channels: int = 128, layers: int = 4, k: int = 16, in_features: int = 0,
                 time_dim: int = 128):
        super().__init__()
        if channels < 1 or layers < 1 or k < 1 or in_features < 0:
            raise ValueError(f"need channels, layers, k >= 1 and in_features >= 0, got "
                             f"{channels}, {layers}, {k}, {in_features}")
        self.k, self.in_features = k, in_features
        self.time = DiffusionStepEmbedding(time_dim)  # sinusoidal + MLP, as DiffWave / CSDI
        self.point_in = nn.Linear(3 + in_features, channels)
        self.edge_nbr = nn.Linear(3, channels, bias=False)  # W1 applied to the neighbour
        self.edge_ctr = nn.Linear(3, channels)              # (W2 - W1) applied to the centre, + bias
        self.edge_out = nn.Linear(channels, channels)
        self.blocks = nn.ModuleList(_Block(channels, time_dim) for _ in range(layers))
        self.out = nn.Sequential(nn.LayerNorm(channels), nn.Linear(channels, 3))
        nn.init.zeros_(self.out[1].weight)  # start as the zero-noise predictor: stable early training
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, features: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != 3:
            raise ValueError(f"expected clouds of shape (B, N, 3), got {tuple(x.shape)}")
        if self.in_features:
            if features is None or features.shape[:2] != x.shape[:2] or features.shape[-1] != self.in_features:
                raise ValueError(f"this denoiser needs per-point features of shape (B, N, {self.in_features})")
            inp = torch.cat([x, features.to(x)], dim=-1)
        elif features is not None:
            raise ValueError("this denoiser was built with in_features=0 but got per-point features")
        else:
            inp = x
        local = knn_max(x, self.edge_nbr(x), self.edge_ctr(x), self.k)
        h = self.point_in(inp) + self.edge_out(local)
        temb = self.time(t)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)
