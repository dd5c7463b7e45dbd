"""TimeGrad's noise network (Rasul et al., ICML 2021): the network only.

:class:`EpsilonTheta`: DiffWave-style residual blocks with dilated 1-D convolutions that run
*across the series axis* (circular padding, which for very few series wraps around more than
once: :class:`CircularConv1d`), gated by the diffusion step embedding and the RNN state. The
model around it (encoder, scaling, schedule, loss, autoregressive sampling) is
:class:`multidiff.tasks.forecasting.timegrad_model.TimeGradModel`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import DiffusionStepEmbedding

__all__ = ["EpsilonTheta", "CircularConv1d"]


class CircularConv1d(nn.Conv1d):
    """``nn.Conv1d(..., padding=pad, padding_mode="circular")`` that also works when ``pad`` exceeds
    the length: the input is extended periodically, wrapping around as often as needed (a length-1
    series axis, ``target_dim=1``, is repeated). torch's circular padding refuses to wrap more than
    once; where it can pad, this is exactly its computation (same padded input, same conv call)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pad: int, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        if self.pad <= n:
            x = F.pad(x, (self.pad, self.pad), mode="circular")
        else:
            x = x.index_select(-1, torch.arange(-self.pad, n + self.pad, device=x.device) % n)
        return super().forward(x)


class _ResidualBlock(nn.Module):
    def __init__(self, hidden: int, channels: int, dilation: int):
        super().__init__()
        self.dilated_conv = CircularConv1d(channels, 2 * channels, 3, pad=dilation, dilation=dilation)
        self.diffusion_projection = nn.Linear(hidden, channels)
        self.conditioner_projection = CircularConv1d(1, 2 * channels, 1, pad=2)
        self.output_projection = nn.Conv1d(channels, 2 * channels, 1)
        nn.init.kaiming_normal_(self.conditioner_projection.weight)
        nn.init.kaiming_normal_(self.output_projection.weight)

    def forward(self, x, cond, step):
        y = self.dilated_conv(x + self.diffusion_projection(step).unsqueeze(-1)) + self.conditioner_projection(cond)
        gate, filt = torch.chunk(y, 2, dim=1)
        y = F.leaky_relu(self.output_projection(torch.sigmoid(gate) * torch.tanh(filt)), 0.4)
        residual, skip = torch.chunk(y, 2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class EpsilonTheta(nn.Module):
    """TimeGrad's eps-network ``(x_t (N, D), t (N,), cond (N, C)) -> eps (N, D)``.

    Residual blocks with dilation ``2 ** (i % dilation_cycle)``; the RNN state is up-sampled
    to one value per series by a two-layer MLP. The two-step padding / unpadded final convs
    follow the reference implementation (pytorch-ts).
    """

    def __init__(self, target_dim: int, cond_dim: int, step_emb_dim: int = 16, residual_layers: int = 8,
                 residual_channels: int = 8, dilation_cycle: int = 2, residual_hidden: int = 64):
        super().__init__()
        self.input_projection = CircularConv1d(1, residual_channels, 1, pad=2)
        self.step_embedding = DiffusionStepEmbedding(step_emb_dim, residual_hidden)
        mid = max(1, target_dim // 2)
        self.cond_upsampler = nn.Sequential(nn.Linear(cond_dim, mid), nn.LeakyReLU(0.4),
                                            nn.Linear(mid, target_dim), nn.LeakyReLU(0.4))
        self.blocks = nn.ModuleList(_ResidualBlock(residual_hidden, residual_channels, 2 ** (i % dilation_cycle))
                                    for i in range(residual_layers))
        self.skip_projection = nn.Conv1d(residual_channels, residual_channels, 3)
        self.output_projection = nn.Conv1d(residual_channels, 1, 3)
        nn.init.kaiming_normal_(self.input_projection.weight)
        nn.init.kaiming_normal_(self.skip_projection.weight)
        nn.init.zeros_(self.output_projection.weight)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.input_projection(x.unsqueeze(1)), 0.4)  # (N, C, D + 4)
        step = self.step_embedding(t)
        c = self.cond_upsampler(cond).unsqueeze(1)
        skips = []
        for block in self.blocks:
            h, skip = block(h, c, step)
            skips.append(skip)
        h = torch.stack(skips).sum(0) / math.sqrt(len(self.blocks))
        h = F.leaky_relu(self.skip_projection(h), 0.4)
        return self.output_projection(h).squeeze(1)  # (N, D)
