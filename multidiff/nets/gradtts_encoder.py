"""Grad-TTS text encoder and duration predictor (Popov et al. 2021, after Glow-TTS, Kim et al. 2020).

Token embedding -> 3-layer conv prenet (ConvReluNorm) -> pre-net residual -> transformer encoder with
rotary positions (Su et al. 2021; Grad-TTS uses windowed relative attention, RoPE is the same idea of
relative-only positions) and conv feed-forward layers -> a 1x1 projection to the per-token mean mel
``mu``. The duration predictor reads the detached encoder output and predicts log durations.
Shapes are channel-first ``(batch, channels, tokens)`` with a ``(batch, 1, tokens)`` mask.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TextEncoder", "DurationPredictor", "sequence_mask"]


def sequence_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``(batch, max_len)`` bool mask, True where position < length."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of ``(batch, channels, time)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvReluNorm(nn.Module):
    """Grad-TTS' prenet: conv-ReLU-norm layers with a zero-initialised residual projection."""

    def __init__(self, channels: int, n_layers: int = 3, kernel: int = 5, p_dropout: float = 0.5):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
                                                  ChannelNorm(channels), nn.ReLU(), nn.Dropout(p_dropout))
                                    for _ in range(n_layers))
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x, mask):
        h = x
        for layer in self.layers:
            h = layer(h * mask)
        return (x + self.proj(h)) * mask


def _rotate(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of ``x`` ``(batch, heads, time, dim)`` (Su et al. 2021)."""
    half = x.shape[-1] // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = pos.float().unsqueeze(-1) * freqs
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half:2 * half]
    return torch.cat([a * cos - b * sin, a * sin + b * cos, x[..., 2 * half:]], dim=-1)


class RotaryAttention(nn.Module):
    def __init__(self, channels: int, n_heads: int, p_dropout: float):
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
        self.n_heads, self.p = n_heads, p_dropout
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x, mask):
        b, c, t = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, self.n_heads, c // self.n_heads, t).transpose(-1, -2).unbind(1)
        pos = torch.arange(t, device=x.device)
        q, k = _rotate(q, pos), _rotate(k, pos)
        attn_mask = mask.bool().unsqueeze(1)  # (b, 1, 1, t): keys outside the text are ignored
        h = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                                       dropout_p=self.p if self.training else 0.0)
        return self.out(h.transpose(-1, -2).reshape(b, c, t))


class FFN(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel: int, p_dropout: float):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, filter_channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(filter_channels, channels, kernel, padding=kernel // 2)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x, mask):
        return self.conv2(self.drop(torch.relu(self.conv1(x * mask))) * mask) * mask


class TextEncoder(nn.Module):
    """Tokens ``(batch, tokens)`` + lengths -> ``mu`` ``(batch, n_feats, tokens)``, hidden states, mask."""

    def __init__(self, n_vocab: int, n_feats: int = 80, channels: int = 192, filter_channels: int = 768,
                 n_heads: int = 2, n_layers: int = 6, kernel: int = 3, p_dropout: float = 0.1):
        super().__init__()
        self.channels = channels
        self.emb = nn.Embedding(n_vocab, channels)
        nn.init.normal_(self.emb.weight, 0.0, channels ** -0.5)
        self.prenet = ConvReluNorm(channels)
        self.attn = nn.ModuleList(RotaryAttention(channels, n_heads, p_dropout) for _ in range(n_layers))
        self.norm1 = nn.ModuleList(ChannelNorm(channels) for _ in range(n_layers))
        self.ffn = nn.ModuleList(FFN(channels, filter_channels, kernel, p_dropout) for _ in range(n_layers))
        self.norm2 = nn.ModuleList(ChannelNorm(channels) for _ in range(n_layers))
        self.drop = nn.Dropout(p_dropout)
        self.proj_mu = nn.Conv1d(channels, n_feats, 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor):
        mask = sequence_mask(lengths, tokens.shape[1]).unsqueeze(1).to(self.emb.weight.dtype)
        x = (self.emb(tokens) * math.sqrt(self.channels)).transpose(1, 2)
        x = self.prenet(x, mask)
        for attn, n1, ffn, n2 in zip(self.attn, self.norm1, self.ffn, self.norm2):
            x = n1(x + self.drop(attn(x, mask)))
            x = n2(x + self.drop(ffn(x, mask)))
        x = x * mask
        return self.proj_mu(x) * mask, x, mask


class DurationPredictor(nn.Module):
    """Two conv-ReLU-norm layers -> log duration per token ``(batch, 1, tokens)`` (Glow-TTS / Grad-TTS)."""

    def __init__(self, in_channels: int, filter_channels: int = 256, kernel: int = 3, p_dropout: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, filter_channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(filter_channels, filter_channels, kernel, padding=kernel // 2)
        self.norm1, self.norm2 = ChannelNorm(filter_channels), ChannelNorm(filter_channels)
        self.drop = nn.Dropout(p_dropout)
        self.proj = nn.Conv1d(filter_channels, 1, 1)

    def forward(self, x, mask):
        x = self.drop(self.norm1(torch.relu(self.conv1(x * mask))))
        x = self.drop(self.norm2(torch.relu(self.conv2(x * mask))))
        return self.proj(x * mask) * mask
