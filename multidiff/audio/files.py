"""Atomic writers for synthesis outputs: WAV files (soundfile) and mel-spectrogram PNGs (matplotlib)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..core.io import write_atomic

__all__ = ["write_wav", "save_mel_png"]


def write_wav(path: str | Path, wav: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM WAV, written atomically; samples are clipped to [-1, 1]."""
    import soundfile as sf

    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    if wav.ndim != 1 or not len(wav):
        raise ValueError(f"expected a non-empty mono waveform (samples,), got shape {wav.shape}")
    write_atomic(path, lambda tmp: sf.write(tmp, wav, sample_rate, subtype="PCM_16", format="WAV"))
    return Path(path)


def save_mel_png(path: str | Path, mels: Mapping[str, torch.Tensor | np.ndarray], title: str = "") -> Path:
    """One panel per named log-mel ``(n_mels, frames)`` (e.g. prior mu, decoded, ground truth), one shared
    colour scale, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not mels:
        raise ValueError("give at least one mel to plot")
    arrays = {k: np.asarray(torch.as_tensor(v).detach().float().cpu()) for k, v in mels.items()}
    lo, hi = min(a.min() for a in arrays.values()), max(a.max() for a in arrays.values())
    fig, axes = plt.subplots(len(arrays), 1, figsize=(10, 2.4 * len(arrays)), squeeze=False,
                             layout="constrained")
    for ax, (name, a) in zip(axes[:, 0], arrays.items()):
        im = ax.imshow(a, origin="lower", aspect="auto", vmin=lo, vmax=hi, interpolation="none")
        ax.set_title(name)
        ax.set_ylabel("mel bin")
    axes[-1, 0].set_xlabel("frame")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="log magnitude")
    if title:
        fig.suptitle(title)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    plt.close(fig)
    return Path(path)
