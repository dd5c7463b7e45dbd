"""Tiny models shared by the purification tests."""
import torch
from torch import nn

from multidiff.core.schedules import vp_alpha_bar


class OracleEps(nn.Module):
    """The exact eps-model when all data is one point ``x0`` (in the model's [-1, 1] space)."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.register_buffer("x0", x0)
        self.dummy = nn.Parameter(torch.zeros((), dtype=x0.dtype))

    def forward(self, x, t):
        ab = vp_alpha_bar(t.double()).to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return (x - ab.sqrt() * self.x0) / (1 - ab).sqrt() + 0 * self.dummy


class LinearClassifier(nn.Module):
    def __init__(self, n_in: int, n_classes: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(n_in, n_classes)

    def forward(self, x):
        return self.lin(x.flatten(1))
