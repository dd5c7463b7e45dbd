"""A small time-conditioned U-Net (Ronneberger et al. 2015; the DDPM variant of Ho et al. 2020)
for 1-D signals or 2-D images: residual blocks with GroupNorm and a diffusion-step embedding,
one skip connection per resolution. Knows nothing of schedules: ``forward(x, t) -> eps``."""
from __future__ import annotations

from torch import nn
import torch

from .embeddings import DiffusionStepEmbedding, sinusoidal_embedding

__all__ = ["SmallUNet"]


def _conv(dims: int):
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 (signals: batch, channels, length) or 2 (images: batch, channels, H, W), got {dims}")
    return nn.Conv1d if dims == 1 else nn.Conv2d


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, dims: int):
        super().__init__()
        conv = _conv(dims)
        self.dims = dims
        self.block1 = nn.Sequential(_norm(cin), nn.SiLU(), conv(cin, cout, 3, padding=1))
        self.temb = nn.Linear(temb, cout)
        self.block2 = nn.Sequential(_norm(cout), nn.SiLU(), conv(cout, cout, 3, padding=1))
        self.skip = conv(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x) + self.temb(emb).reshape(emb.shape[0], -1, *([1] * self.dims))
        return self.skip(x) + self.block2(h)


class SmallUNet(nn.Module):
    """Time-conditioned U-Net predicting the noise ``eps`` of ``x_t`` (same shape as ``x_t``).

    ``t`` holds one diffusion time per batch row; ``time_scale`` multiplies it before the
    sinusoidal embedding (1000 for VP-SDE times in [0, 1], 1 for step indices). Each of the
    ``len(mults)`` levels halves the resolution after the first, so every spatial size must be
    divisible by ``2 ** (len(mults) - 1)``.
    """

    def __init__(self, in_channels: int, base: int = 32, mults: tuple[int, ...] = (1, 2), dims: int = 2,
                 time_dim: int = 64, time_scale: float = 1000.0):
        super().__init__()
        conv = _conv(dims)
        if in_channels < 1 or base < 1 or not mults:
            raise ValueError("in_channels and base must be >= 1 and mults non-empty")
        self.config = {"in_channels": in_channels, "base": base, "mults": list(mults), "dims": dims,
                       "time_dim": time_dim, "time_scale": time_scale}
        self.dims, self.factor = dims, 2 ** (len(mults) - 1)
        self.embed = DiffusionStepEmbedding(time_dim, out_dim=4 * base, scale=time_scale)
        temb = 4 * base
        chans = [base * m for m in mults]
        self.conv_in = conv(in_channels, chans[0], 3, padding=1)
        self.down, self.pool = nn.ModuleList(), nn.ModuleList()
        prev = chans[0]
        for i, ch in enumerate(chans):
            self.down.append(_ResBlock(prev, ch, temb, dims))
            self.pool.append(conv(ch, ch, 3, stride=2, padding=1) if i + 1 < len(chans) else nn.Identity())
            prev = ch
        self.mid = _ResBlock(prev, prev, temb, dims)
        self.up, self.unpool = nn.ModuleList(), nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            self.up.append(_ResBlock(prev + ch, ch, temb, dims))
            self.unpool.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv(ch, chans[i - 1], 3, padding=1))
                               if i > 0 else nn.Identity())
            prev = chans[i - 1] if i > 0 else ch
        self.out = nn.Sequential(_norm(prev), nn.SiLU(), conv(prev, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.dims + 2:
            raise ValueError(f"SmallUNet(dims={self.dims}) expects input of {self.dims + 2} dimensions, got shape {tuple(x.shape)}")
        if any(s % self.factor for s in x.shape[2:]):
            raise ValueError(f"spatial size {tuple(x.shape[2:])} must be divisible by {self.factor}; pad the input "
                             "or use fewer levels (shorter mults)")
        t = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
        # the embedding MLP runs in the network's dtype, so float64 models (gradient checks) work too
        emb = self.embed.mlp(sinusoidal_embedding(t.float() * self.embed.scale, self.embed.dim).to(x.dtype))
        h = self.conv_in(x)
        skips = []
        for block, pool in zip(self.down, self.pool):
            h = block(h, emb)
            skips.append(h)
            h = pool(h)
        h = self.mid(h, emb)
        for block, unpool in zip(self.up, self.unpool):
            h = unpool(block(torch.cat([h, skips.pop()], dim=1), emb))
        return self.out(h)
