"""Log-mel spectrograms with the HiFi-GAN convention (Kong et al. 2020), as Grad-TTS trains on.

80 bins, 22.05 kHz, n_fft 1024, hop 256, window 1024 (Hann), fmin 0, fmax 8000; the signal is
reflect-padded by ``(n_fft - hop) / 2`` on both sides and framed with ``center=False``, the
magnitude is ``sqrt(re^2 + im^2 + 1e-9)``, projected on librosa's Slaney mel filters and
compressed with ``log(clamp(x, min=1e-5))``. Runs on whatever device the waveform is on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch

__all__ = ["MelConfig", "mel_filters", "mel_spectrogram", "LOG_CLAMP"]

LOG_CLAMP = 1e-5  # HiFi-GAN's dynamic_range_compression clip value: log-mels are >= log(1e-5)


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 22050  # Hz (LJ Speech)
    n_fft: int = 1024         # FFT size
    hop_length: int = 256     # frame shift in samples (11.6 ms)
    win_length: int = 1024    # Hann window length
    n_mels: int = 80          # mel bins
    fmin: float = 0.0         # lowest mel edge (Hz)
    fmax: float = 8000.0      # highest mel edge (Hz)

    def __post_init__(self):
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}, "
                             f"sample_rate={self.sample_rate}")
        if (self.n_fft - self.hop_length) % 2:
            raise ValueError("n_fft - hop_length must be even (the HiFi-GAN padding splits it in two)")

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=8)
def _filters_np(cfg: MelConfig) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)


def mel_filters(cfg: MelConfig = MelConfig(), device=None, dtype=torch.float32) -> torch.Tensor:
    """librosa's Slaney-normalised mel filterbank, ``(n_mels, n_fft // 2 + 1)``, on ``device``."""
    return torch.as_tensor(_filters_np(cfg), dtype=dtype, device=device)


def mel_spectrogram(wav: torch.Tensor, cfg: MelConfig = MelConfig()) -> torch.Tensor:
    """Log-mel of ``wav`` ``(samples,)`` or ``(batch, samples)`` -> ``(n_mels, frames)`` or
    ``(batch, n_mels, frames)`` with ``frames = samples // hop_length``."""
    wav = torch.as_tensor(wav)
    if wav.dim() not in (1, 2):
        raise ValueError(f"expected a waveform of shape (samples,) or (batch, samples), got {tuple(wav.shape)}")
    squeeze = wav.dim() == 1
    x = wav.float().reshape(1, -1) if squeeze else wav.float()
    pad = (cfg.n_fft - cfg.hop_length) // 2
    if x.shape[-1] <= pad:
        raise ValueError(f"waveform of {x.shape[-1]} samples is too short for a mel frame (needs > {pad})")
    x = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(cfg.win_length, device=x.device)
    spec = torch.stft(x, cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, window=window,
                      center=False, return_complex=True)
    mag = torch.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-9)
    mel = torch.log(torch.clamp(mel_filters(cfg, x.device) @ mag, min=LOG_CLAMP))
    return mel[0] if squeeze else mel
