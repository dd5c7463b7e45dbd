"""Grad-TTS' decoder network (GradLogPEstimator2d, Popov et al. 2021): a 2-D U-Net over the mel.

The noisy mel and the aligned encoder mean ``mu`` are stacked as two image channels
``(batch, 2, n_feats, frames)``; residual blocks (conv-GroupNorm-Mish) take the diffusion time
embedding, each resolution has a zero-initialised (ReZero) linear-attention block, and the output is
one channel, masked to the valid frames. ``n_feats`` and ``frames`` must be divisible by
``2 ** (len(dim_mults) - 1)`` (pad with :func:`fit_length`). The network predicts whatever its training
loss asks of it (here the noise eps); it knows nothing of schedules.
"""
from __future__ import annotations

import torch
from torch import nn

from .embeddings import DiffusionStepEmbedding

__all__ = ["MelUNet", "fit_length"]


def fit_length(frames: int, n_down: int) -> int:
    """Smallest length >= ``frames`` divisible by ``2 ** n_down`` (Grad-TTS' fix_len_compatibility)."""
    f = 2 ** n_down
    return int(-(-frames // f) * f)


class Block(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, groups: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(dim_in, dim_out, 3, padding=1), nn.GroupNorm(groups, dim_out), nn.Mish())

    def forward(self, x, mask):
        return self.net(x * mask) * mask


class ResnetBlock(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, time_dim: int, groups: int):
        super().__init__()
        self.time = nn.Sequential(nn.Mish(), nn.Linear(time_dim, dim_out))
        self.block1, self.block2 = Block(dim_in, dim_out, groups), Block(dim_out, dim_out, groups)
        self.skip = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x, mask, t_emb):
        h = self.block1(x, mask) + self.time(t_emb)[:, :, None, None]
        return self.block2(h, mask) + self.skip(x * mask)


class LinearAttention(nn.Module):
    """Linear attention over all (feature, frame) positions (Katharopoulos et al. 2020), ReZero-gated."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.heads, hidden = heads, heads * dim_head
        self.qkv = nn.Conv2d(dim, 3 * hidden, 1, bias=False)
        self.out = nn.Conv2d(hidden, dim, 1)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, _, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, self.heads, -1, h * w).unbind(1)
        k = k.softmax(dim=-1)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q).reshape(b, -1, h, w)
        return x + self.gate * self.out(out)


class MelUNet(nn.Module):
    """``forward(x_t, mask, mu, t) -> (batch, n_feats, frames)``; ``t`` is the VP time in [0, 1]."""

    def __init__(self, dim: int = 64, dim_mults: tuple[int, ...] = (1, 2, 4), groups: int = 8,
                 time_scale: float = 1000.0, attn_dim_head: int = 32):
        super().__init__()
        dims = [2] + [dim * m for m in dim_mults]
        time_dim = 4 * dim
        self.n_down = len(dim_mults) - 1
        self.time = DiffusionStepEmbedding(dim, out_dim=time_dim, scale=time_scale)
        self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
        pairs = list(zip(dims[:-1], dims[1:]))
        for i, (d_in, d_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.downs.append(nn.ModuleList([
                ResnetBlock(d_in, d_out, time_dim, groups), ResnetBlock(d_out, d_out, time_dim, groups),
                LinearAttention(d_out, dim_head=attn_dim_head),
                nn.Identity() if last else nn.Conv2d(d_out, d_out, 3, stride=2, padding=1)]))
        mid = dims[-1]
        self.mid1, self.mid_attn = ResnetBlock(mid, mid, time_dim, groups), LinearAttention(mid, dim_head=attn_dim_head)
        self.mid2 = ResnetBlock(mid, mid, time_dim, groups)
        for d_in, d_out in reversed(pairs[1:]):
            self.ups.append(nn.ModuleList([
                ResnetBlock(2 * d_out, d_in, time_dim, groups), ResnetBlock(d_in, d_in, time_dim, groups),
                LinearAttention(d_in, dim_head=attn_dim_head), nn.ConvTranspose2d(d_in, d_in, 4, stride=2, padding=1)]))
        self.final = Block(dim, dim, groups)
        self.proj = nn.Conv2d(dim, 1, 1)

    def forward(self, x_t: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x_t.shape[-1] % (2 ** self.n_down) or x_t.shape[-2] % (2 ** self.n_down):
            raise ValueError(f"mel of shape {tuple(x_t.shape[-2:])} is not divisible by {2 ** self.n_down}; "
                             "pad frames with fit_length()")
        t_emb = self.time(t)
        x = torch.stack([x_t, mu], dim=1)
        masks, hiddens = [mask[:, None, None, :].to(x.dtype)], []  # (b, 1, 1, frames) per resolution
        for res1, res2, attn, down in self.downs:
            m = masks[-1]
            x = attn(res2(res1(x, m, t_emb), m, t_emb))
            hiddens.append(x)
            x = down(x * m)
            masks.append(m[..., ::2])
        masks.pop()
        m = masks[-1]
        x = self.mid2(self.mid_attn(self.mid1(x, m, t_emb)), m, t_emb)
        for res1, res2, attn, up in self.ups:
            m = masks.pop()
            x = torch.cat([x, hiddens.pop()], dim=1)
            x = up(attn(res2(res1(x, m, t_emb), m, t_emb)) * m)
        m = masks[0]
        return (self.proj(self.final(x, m)) * m).squeeze(1)
