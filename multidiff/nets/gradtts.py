"""Grad-TTS network (Popov et al., ICML 2021): text encoder + duration predictor + mel U-Net decoder.

The network only maps tensors to tensors; the diffusion (VP-SDE shifted by ``mu``), monotonic
alignment and losses live in :mod:`multidiff.tasks.tts`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .gradtts_decoder import MelUNet, fit_length
from .gradtts_encoder import DurationPredictor, TextEncoder, sequence_mask

__all__ = ["GradTTSConfig", "GradTTSNet", "sequence_mask", "fit_length"]


@dataclass
class GradTTSConfig:
    n_vocab: int                    # number of input symbols (blank included)
    n_feats: int = 80               # mel bins
    enc_channels: int = 192         # encoder width (Grad-TTS: 192)
    enc_filter: int = 768           # encoder feed-forward width (Grad-TTS: 768)
    enc_heads: int = 2              # attention heads (Grad-TTS: 2)
    enc_layers: int = 6             # transformer layers (Grad-TTS: 6)
    dp_filter: int = 256            # duration predictor width (Grad-TTS: 256)
    dropout: float = 0.1            # encoder / duration predictor dropout
    dec_dim: int = 64               # U-Net base width (Grad-TTS: 64)
    dec_mults: tuple = (1, 2, 4)    # U-Net width multipliers per resolution (Grad-TTS: 1, 2, 4)
    dec_groups: int = 8             # GroupNorm groups in the U-Net
    dec_attn_dim: int = 32          # per-head width of the U-Net's linear attention (4 heads; Grad-TTS: 32)

    def to_dict(self) -> dict:
        return {**asdict(self), "dec_mults": list(self.dec_mults)}

    @classmethod
    def from_dict(cls, d: dict) -> "GradTTSConfig":
        return cls(**{**d, "dec_mults": tuple(d.get("dec_mults", (1, 2, 4)))})


class GradTTSNet(nn.Module):
    """``encode(tokens, lengths) -> (mu_x, log_durations, x_mask)``; ``denoise(y_t, y_mask, mu_y, t) -> eps``."""

    def __init__(self, cfg: GradTTSConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.n_feats % (2 ** (len(cfg.dec_mults) - 1)):
            raise ValueError(f"n_feats={cfg.n_feats} must be divisible by 2**(len(dec_mults)-1)")
        self.encoder = TextEncoder(cfg.n_vocab, cfg.n_feats, cfg.enc_channels, cfg.enc_filter, cfg.enc_heads,
                                   cfg.enc_layers, p_dropout=cfg.dropout)
        self.duration = DurationPredictor(cfg.enc_channels, cfg.dp_filter, p_dropout=cfg.dropout)
        self.decoder = MelUNet(cfg.dec_dim, tuple(cfg.dec_mults), cfg.dec_groups, attn_dim_head=cfg.dec_attn_dim)

    @property
    def n_down(self) -> int:
        return self.decoder.n_down

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor):
        mu_x, hidden, x_mask = self.encoder(tokens, lengths)
        logw = self.duration(hidden.detach(), x_mask)  # Grad-TTS: no duration gradient into the encoder
        return mu_x, logw, x_mask

    def denoise(self, y_t: torch.Tensor, y_mask: torch.Tensor, mu_y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.decoder(y_t, y_mask, mu_y, t)
