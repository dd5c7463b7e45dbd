"""Speech metrics: mel cepstral distortion with DTW (Kubichek 1993) and log-F0 RMSE.

MCD: the cepstrum of the natural-log *amplitude* mel spectrum (HiFi-GAN mel, N = 80 bins), i.e. the
real cepstrum on a mel-warped frequency axis, ``c_m = (1/N) sum_k log X_k cos(pi m (k + 1/2) / N)``
(the role SPTK's all-pass-warped ``mcep`` plays in Kubichek's definition; values are on that scale
but not identical to it), coefficients 1..``order`` (c0, the energy, is excluded as usual); the two utterances are aligned by
dynamic time warping on those cepstra and the distortion ``(10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)``
is averaged over the warping path, in dB. log-F0 RMSE: F0 by pYIN (Mauch & Dixon 2014), compared on the
same warping path over the frames voiced in both, as ``sqrt(mean((ln f0 - ln f0')^2))``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["mel_cepstrum", "dtw_path", "mel_cepstral_distortion", "mcd_dtw", "f0_track", "log_f0_rmse",
           "speech_features", "compare_features", "speech_metrics"]

_MCD_K = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mel_cepstrum(log_mel: torch.Tensor | np.ndarray, order: int = 24) -> np.ndarray:
    """``(frames, order)`` mel cepstra c1..c_order of a natural-log mel ``(n_mels, frames)`` (module docstring)."""
    from scipy.fft import dct

    log_mel = np.asarray(torch.as_tensor(log_mel).detach().cpu(), dtype=np.float64)
    if log_mel.ndim != 2 or not 0 < order < log_mel.shape[0]:
        raise ValueError(f"expected a (n_mels, frames) log-mel and 0 < order < n_mels, got {log_mel.shape}, {order}")
    n = log_mel.shape[0]
    return (dct(log_mel, type=2, axis=0) / (2 * n))[1:order + 1].T  # scipy's DCT-II is 2 * sum(...)


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Optimal DTW path ``(steps, 2)`` of frame index pairs between ``a`` ``(n, d)`` and ``b`` ``(m, d)``,
    Euclidean frame distance, steps (1,0), (0,1), (1,1), from (0, 0) to (n-1, m-1)."""
    import librosa

    _, wp = librosa.sequence.dtw(X=np.asarray(a).T, Y=np.asarray(b).T, metric="euclidean")
    return np.ascontiguousarray(wp[::-1])


def mel_cepstral_distortion(c_ref: np.ndarray, c_syn: np.ndarray, path: np.ndarray | None = None) -> float:
    """Mean MCD in dB between cepstra ``(frames, order)``; frames paired by ``path`` (DTW if None)."""
    c_ref, c_syn = np.asarray(c_ref, np.float64), np.asarray(c_syn, np.float64)
    if c_ref.ndim != 2 or c_ref.shape[1] != c_syn.shape[1]:
        raise ValueError(f"cepstra must be (frames, order) with equal order, got {c_ref.shape} and {c_syn.shape}")
    path = dtw_path(c_ref, c_syn) if path is None else np.asarray(path)
    diff = c_ref[path[:, 0]] - c_syn[path[:, 1]]
    return float(np.mean(_MCD_K * np.sqrt((diff ** 2).sum(axis=1))))


def mcd_dtw(ref_log_mel, syn_log_mel, order: int = 24) -> float:
    """MCD-DTW (dB) between two log-mels ``(n_mels, frames)`` (see module docstring)."""
    return mel_cepstral_distortion(mel_cepstrum(ref_log_mel, order), mel_cepstrum(syn_log_mel, order))


def f0_track(wav: np.ndarray, sample_rate: int = 22050, hop_length: int = 256, fmin: float = 65.0,
             fmax: float = 600.0) -> np.ndarray:
    """pYIN F0 in Hz per hop (``len(wav) // hop_length`` frames), NaN where unvoiced."""
    import librosa

    wav = np.asarray(wav, dtype=np.float32)
    f0, _, _ = librosa.pyin(wav, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=4 * hop_length,
                            hop_length=hop_length)
    return f0[: len(wav) // hop_length]


def log_f0_rmse(f0_ref: np.ndarray, f0_syn: np.ndarray, path: np.ndarray | None = None) -> float:
    """RMSE of natural-log F0 over frame pairs (``path``, default index-by-index) voiced in both;
    NaN or 0 marks unvoiced frames. Returns NaN when no pair is voiced in both."""
    f0_ref, f0_syn = np.asarray(f0_ref, np.float64), np.asarray(f0_syn, np.float64)
    if path is None:
        n = min(len(f0_ref), len(f0_syn))
        path = np.stack([np.arange(n), np.arange(n)], axis=1)
    path = np.asarray(path)
    path = path[(path[:, 0] < len(f0_ref)) & (path[:, 1] < len(f0_syn))]
    a, b = f0_ref[path[:, 0]], f0_syn[path[:, 1]]
    voiced = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    if not voiced.any():
        return float("nan")
    return float(np.sqrt(np.mean((np.log(a[voiced]) - np.log(b[voiced])) ** 2)))


def speech_features(wav: np.ndarray, sample_rate: int = 22050, order: int = 24, with_f0: bool = True) -> dict:
    """Mel cepstra (HiFi-GAN mel at this rate) and, with ``with_f0``, the pYIN F0 track of a waveform."""
    from ..audio.mel import MelConfig, mel_spectrogram

    cfg = MelConfig(sample_rate=sample_rate)
    wav = np.asarray(wav, np.float32)
    cep = mel_cepstrum(mel_spectrogram(torch.as_tensor(wav), cfg), order)
    return {"cep": cep, "f0": f0_track(wav, sample_rate, cfg.hop_length) if with_f0 else None}


def compare_features(ref: dict, syn: dict) -> dict[str, float]:
    """``{"mcd": dB[, "log_f0_rmse"]}`` of two :func:`speech_features`, on one DTW path over the cepstra."""
    path = dtw_path(ref["cep"], syn["cep"])
    out = {"mcd": mel_cepstral_distortion(ref["cep"], syn["cep"], path)}
    if ref.get("f0") is not None and syn.get("f0") is not None:
        out["log_f0_rmse"] = log_f0_rmse(ref["f0"], syn["f0"], path)
    return out


def speech_metrics(ref_wav: np.ndarray, syn_wav: np.ndarray, sample_rate: int = 22050, order: int = 24,
                   with_f0: bool = True) -> dict[str, float]:
    """MCD-DTW (dB) and log-F0 RMSE between a recorded and a synthesized waveform, both analysed the same
    way and aligned by one DTW path on their mel cepstra."""
    return compare_features(speech_features(ref_wav, sample_rate, order, with_f0),
                            speech_features(syn_wav, sample_rate, order, with_f0))
