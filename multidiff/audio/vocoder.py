"""Vocoders: anything callable as ``vocoder(log_mel) -> waveform``.

A *vocoder* takes a HiFi-GAN-convention log-mel ``(n_mels, frames)`` or ``(batch, n_mels, frames)``
(see :mod:`multidiff.audio.mel`) and returns a float waveform ``(samples,)`` / ``(batch, samples)`` at
the mel's sample rate, on the mel's device. :class:`GriffinLim` is the built-in default; a neural
vocoder (HiFi-GAN, Kong et al. 2020) plugs in as any ``nn.Module`` or function with that signature.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from ..core.validate import check_whole
from .mel import LOG_CLAMP, MelConfig, mel_filters

Vocoder = Callable[[torch.Tensor], torch.Tensor]
MAX_LOG_MEL = 10.0  # log-mels above this are clipped before inversion

__all__ = ["Vocoder", "GriffinLim", "mel_to_linear"]


@lru_cache(maxsize=8)
def _pinv(cfg: MelConfig) -> np.ndarray:
    return np.linalg.pinv(mel_filters(cfg).numpy())


def mel_to_linear(log_mel: torch.Tensor, cfg: MelConfig = MelConfig(), n_iter: int = 32) -> torch.Tensor:
    """Invert ``log(clamp(M s))`` to a non-negative linear magnitude ``s`` (``(..., n_fft//2+1, frames)``):
    non-negative least squares by multiplicative updates (Lee & Seung 2001) from the pseudo-inverse,
    the same problem librosa's ``mel_to_stft`` solves with NNLS."""
    fb = mel_filters(cfg, log_mel.device)
    # HiFi-GAN log-mels of real speech lie in about [-11.5, 3]; clamping keeps exp() finite for a
    # decoder that overshoots (an under-trained model can)
    target = torch.exp(log_mel.float().clamp(min=math.log(LOG_CLAMP), max=MAX_LOG_MEL))
    s = (torch.as_tensor(_pinv(cfg), device=log_mel.device) @ target).clamp(min=1e-5)
    gram, rhs = fb.T @ fb, fb.T @ target
    for _ in range(n_iter):
        s = s * rhs / (gram @ s).clamp(min=1e-10)
    return s


class GriffinLim:
    """Fast Griffin-Lim phase reconstruction (Perraudin et al. 2013; Griffin & Lim 1984) in torch.

    ``n_iter`` projections with ``momentum`` (0 is the classic algorithm); the magnitude is raised to
    ``power`` first (>1 sharpens harmonics, as Tacotron's 1.5). The output has ``frames * hop`` samples,
    aligned so that :func:`multidiff.audio.mel.mel_spectrogram` of it has the input's frame grid.
    """

    def __init__(self, cfg: MelConfig = MelConfig(), n_iter: int = 60, momentum: float = 0.99, power: float = 1.0,
                 seed: int = 0):
        n_iter = check_whole("n_iter", n_iter)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.cfg, self.n_iter, self.momentum, self.power, self.seed = cfg, n_iter, momentum, power, seed

    def _stft(self, x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        return torch.stft(x, c.n_fft, c.hop_length, c.win_length, window, center=True, return_complex=True)

    def _istft(self, spec: torch.Tensor, window: torch.Tensor, length: int) -> torch.Tensor:
        c = self.cfg
        return torch.istft(spec, c.n_fft, c.hop_length, c.win_length, window, center=True, length=length)

    @torch.no_grad()
    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(log_mel).all():
            raise ValueError("the mel holds NaN or inf values; check the model that produced it")
        if log_mel.dim() not in (2, 3) or log_mel.shape[-2] != self.cfg.n_mels:
            raise ValueError(f"expected a log-mel of shape ({self.cfg.n_mels}, frames) or "
                             f"(batch, {self.cfg.n_mels}, frames), got {tuple(log_mel.shape)}")
        squeeze = log_mel.dim() == 2
        mag = mel_to_linear(log_mel.reshape(-1, *log_mel.shape[-2:]), self.cfg) ** self.power
        frames = mag.shape[-1]
        if frames < 2:
            raise ValueError("Griffin-Lim needs at least 2 mel frames")
        length = (frames - 1) * self.cfg.hop_length  # center=True framing of this length gives `frames` frames
        window = torch.hann_window(self.cfg.win_length, device=mag.device)
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        phase = torch.rand(mag.shape, generator=g).to(mag.device) * 2 * math.pi
        angles = torch.polar(torch.ones_like(mag), phase)
        prev = torch.zeros_like(angles)
        for _ in range(self.n_iter):
            rebuilt = self._stft(self._istft(mag * angles, window, length), window)
            angles = rebuilt - (self.momentum / (1 + self.momentum)) * prev
            angles = angles / angles.abs().clamp(min=1e-16)
            prev = rebuilt
        wav = self._istft(mag * angles, window, length)
        # internal frame k is centred on sample k*hop; the HiFi-GAN framing centres it on k*hop + hop/2
        half = self.cfg.hop_length // 2
        wav = torch.nn.functional.pad(wav, (half, self.cfg.hop_length - half))
        return wav[0] if squeeze else wav
