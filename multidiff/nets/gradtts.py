"""Grad-TTS network (Popov et al., ICML 2021): text encoder + duration predictor + mel U-Net decoder,
the decoder either Grad-TTS' 2-D U-Net (``decoder="unet2d"``) or Matcha-TTS' 1-D U-Net with transformer
blocks (``decoder="unet1d"``, Mehta et al. 2024: cheaper per frame, what a CPU trains).

The network only maps tensors to tensors; the diffusion (VP-SDE shifted by ``mu``), monotonic
alignment and losses live in :mod:`multidiff.tasks.tts`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .gradtts_decoder import MelUNet, fit_length
from .gradtts_encoder import DurationPredictor, TextEncoder, sequence_mask
from .mel_unet1d import MelUNet1d

__all__ = ["GradTTSConfig", "GradTTSNet", "sequence_mask", "fit_length", "DECODERS"]

DECODERS = ("unet2d", "unet1d")


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
    decoder: str = "unet2d"         # "unet2d": Grad-TTS' U-Net (the dec_* fields above); "unet1d": Matcha's
    dec_channels: tuple = (160, 160)  # unet1d: width per resolution (Matcha: 256, 256)
    dec_mid: int = 2                # unet1d: middle residual + transformer blocks (Matcha: 2)
    dec_heads: int = 2              # unet1d: attention heads (Matcha: 2)

    def __post_init__(self):
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "dec_mults": list(self.dec_mults), "dec_channels": list(self.dec_channels)}

    @classmethod
    def from_dict(cls, d: dict) -> "GradTTSConfig":
        return cls(**{**d, "dec_mults": tuple(d.get("dec_mults", (1, 2, 4))),
                      "dec_channels": tuple(d.get("dec_channels", (160, 160)))})


class GradTTSNet(nn.Module):
    """``encode(tokens, lengths) -> (mu_x, log_durations, x_mask)``; ``denoise(y_t, y_mask, mu_y, t) -> eps``."""

    def __init__(self, cfg: GradTTSConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.decoder == "unet2d" and cfg.n_feats % (2 ** (len(cfg.dec_mults) - 1)):
            raise ValueError(f"n_feats={cfg.n_feats} must be divisible by 2**(len(dec_mults)-1)")
        self.encoder = TextEncoder(cfg.n_vocab, cfg.n_feats, cfg.enc_channels, cfg.enc_filter, cfg.enc_heads,
                                   cfg.enc_layers, p_dropout=cfg.dropout)
        self.duration = DurationPredictor(cfg.enc_channels, cfg.dp_filter, p_dropout=cfg.dropout)
        self.decoder = self.make_decoder(cfg)

    @staticmethod
    def make_decoder(cfg: GradTTSConfig) -> nn.Module:
        """The decoder ``cfg`` names, freshly initialised."""
        if cfg.decoder == "unet1d":
            return MelUNet1d(cfg.n_feats, tuple(cfg.dec_channels), cfg.dec_mid, cfg.dec_heads, groups=cfg.dec_groups)
        return MelUNet(cfg.dec_dim, tuple(cfg.dec_mults), cfg.dec_groups, attn_dim_head=cfg.dec_attn_dim)

    @property
    def n_down(self) -> int:
        return self.decoder.n_down

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor):
        mu_x, hidden, x_mask = self.encoder(tokens, lengths)
        logw = self.duration(hidden.detach(), x_mask)  # Grad-TTS: no duration gradient into the encoder
        return mu_x, logw, x_mask

    def denoise(self, y_t: torch.Tensor, y_mask: torch.Tensor, mu_y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.decoder(y_t, y_mask, mu_y, t)
