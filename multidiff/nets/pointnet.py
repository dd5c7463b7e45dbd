"""PointNet shape encoder (Qi et al. 2017) as the latent point-cloud model of Luo & Hu (2021) uses it.

``mean, logvar = encoder(x)`` for clouds ``x`` of shape (B, N, 3): a shared per-point MLP
3 -> 128 -> 128 -> 256 -> 512, a max-pool over the points (so the code does not depend on their
order), and two MLP heads 512 -> 256 -> 128 -> ``latent_dim`` for the mean and log-variance of
the posterior q(z | X). Points are rows of channels-last linear layers (no Conv1d transposes).

Luo & Hu normalise with BatchNorm; LayerNorm here keeps a shape's code independent of the other
shapes of its batch and lets a batch of one shape through.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["PointNetEncoder"]


def _mlp(widths: Sequence[int], last_plain: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if not (last_plain and i == len(widths) - 2):
            layers += [nn.LayerNorm(b), nn.ReLU()]
    return nn.Sequential(*layers)


class PointNetEncoder(nn.Module):
    """Posterior ``(mean, logvar)``, each (B, latent_dim), of a batch of (B, N, 3) clouds."""

    def __init__(self, latent_dim: int = 256, in_dim: int = 3, widths: Sequence[int] = (128, 128, 256, 512),
                 head: Sequence[int] = (256, 128)):
        super().__init__()
        if latent_dim < 1 or in_dim < 1 or not widths or min(widths) < 1 or (head and min(head) < 1):
            raise ValueError(f"need latent_dim, in_dim and every width >= 1, got latent_dim={latent_dim}, "
                             f"in_dim={in_dim}, widths={tuple(widths)}, head={tuple(head)}")
        self.latent_dim, self.in_dim = latent_dim, in_dim
        # the last point layer is not activated before the max-pool (as Luo & Hu's conv4 + bn4)
        self.points = _mlp((in_dim, *widths), last_plain=True)
        self.mean = _mlp((widths[-1], *head, latent_dim), last_plain=True)
        self.logvar = _mlp((widths[-1], *head, latent_dim), last_plain=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.in_dim or x.shape[1] == 0:
            raise ValueError(f"expected clouds of shape (B, N, {self.in_dim}) with N >= 1, got {tuple(x.shape)}")
        pooled = self.points(x).amax(dim=1)
        return self.mean(pooled), self.logvar(pooled)
