"""Matcha-TTS' decoder (Mehta et al., ICASSP 2024): a 1-D U-Net over mel frames with transformer blocks.

The mel bins are channels, so the network's cost is linear in frames and independent of the mel's
height, which is what makes it train on a CPU where Grad-TTS' 2-D U-Net does not. The noisy mel and
the aligned encoder mean ``mu`` are concatenated on channels ``(batch, 2 n_feats, frames)``; each
resolution has a residual block (conv-GroupNorm-Mish, the time embedding added) followed by a
transformer block (self-attention over the valid frames, feed-forward), the middle ``n_mid`` of
them; down by strided convolution, up by nearest upsampling and a convolution, skips concatenated.
Same call as :class:`~multidiff.nets.gradtts_decoder.MelUNet`: ``forward(x_t, mask, mu, t)``.
"""
from __future__ import annotations

import torch
from torch import nn

from .embeddings import DiffusionStepEmbedding

__all__ = ["MelUNet1d"]


class ResBlock1d(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, time_dim: int, groups: int):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv1d(dim_in, dim_out, 3, padding=1), nn.GroupNorm(groups, dim_out), nn.Mish())
        self.block2 = nn.Sequential(nn.Conv1d(dim_out, dim_out, 3, padding=1), nn.GroupNorm(groups, dim_out), nn.Mish())
        self.time = nn.Sequential(nn.Mish(), nn.Linear(time_dim, dim_out))
        self.skip = nn.Conv1d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x, mask, t_emb):
        h = self.block1(x * mask) * mask + self.time(t_emb)[:, :, None]
        return self.block2(h * mask) * mask + self.skip(x * mask)


class TransformerBlock1d(nn.Module):
    """Pre-norm self-attention and feed-forward over frames; padded frames are never attended to."""

    def __init__(self, dim: int, heads: int, ff_mult: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))

    def forward(self, x, mask):
        h = x.transpose(1, 2)  # (batch, frames, channels)
        pad = mask[:, 0] < 0.5
        q = self.norm1(h)
        h = h + self.attn(q, q, q, key_padding_mask=pad, need_weights=False)[0]
        h = h + self.ff(self.norm2(h))
        return h.transpose(1, 2) * mask


class MelUNet1d(nn.Module):
    """``forward(x_t, mask, mu, t) -> (batch, n_feats, frames)``; ``t`` in [0, 1] (flow or VP time).

    ``channels`` gives the width per resolution (``len(channels) - 1`` halvings of the frames)."""

    def __init__(self, n_feats: int = 80, channels: tuple[int, ...] = (160, 160), n_mid: int = 2, heads: int = 2,
                 ff_mult: int = 2, groups: int = 8, time_scale: float = 1000.0):
        super().__init__()
        time_dim = channels[0]
        self.n_down = len(channels) - 1
        self.time = DiffusionStepEmbedding(channels[0], out_dim=time_dim, scale=time_scale)
        dims = [2 * n_feats, *channels]
        self.downs = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(channels) - 1
            self.downs.append(nn.ModuleList([ResBlock1d(d_in, d_out, time_dim, groups),
                                             TransformerBlock1d(d_out, heads, ff_mult),
                                             nn.Identity() if last else nn.Conv1d(d_out, d_out, 3, stride=2, padding=1)]))
        mid = channels[-1]
        self.mids = nn.ModuleList([nn.ModuleList([ResBlock1d(mid, mid, time_dim, groups),
                                                  TransformerBlock1d(mid, heads, ff_mult)]) for _ in range(n_mid)])
        self.ups = nn.ModuleList()
        up_dims, d_in = list(reversed(channels)), mid
        for i, d_skip in enumerate(up_dims):
            d_out = up_dims[i + 1] if i + 1 < len(up_dims) else channels[0]
            last = i == len(up_dims) - 1
            self.ups.append(nn.ModuleList([ResBlock1d(d_in + d_skip, d_out, time_dim, groups),
                                           TransformerBlock1d(d_out, heads, ff_mult),
                                           nn.Identity() if last else nn.Sequential(
                                               nn.Upsample(scale_factor=2, mode="nearest"),
                                               nn.Conv1d(d_out, d_out, 3, padding=1))]))
            d_in = d_out
        self.final = nn.Sequential(nn.Conv1d(channels[0], channels[0], 3, padding=1),
                                   nn.GroupNorm(groups, channels[0]), nn.Mish())
        self.proj = nn.Conv1d(channels[0], n_feats, 1)

    def forward(self, x_t: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x_t.shape[-1] % (2 ** self.n_down):
            raise ValueError(f"{x_t.shape[-1]} frames are not divisible by {2 ** self.n_down}; pad frames with "
                             "fit_length()")
        t_emb = self.time(t)
        x = torch.cat([x_t, mu], dim=1)
        masks, skips = [mask[:, None, :].to(x.dtype)], []
        for res, attn, down in self.downs:
            m = masks[-1]
            x = attn(res(x, m, t_emb), m)
            skips.append(x)
            if not isinstance(down, nn.Identity):
                x = down(x * m)
                masks.append(m[..., ::2])
        m = masks[-1]
        for res, attn in self.mids:
            x = attn(res(x, m, t_emb), m)
        for res, attn, up in self.ups:
            m = masks[-1]
            x = attn(res(torch.cat([x, skips.pop()], dim=1), m, t_emb), m)
            if not isinstance(up, nn.Identity):
                masks.pop()
                x = up(x * m)
        m = masks[0]
        return self.proj(self.final(x * m) * m) * m
