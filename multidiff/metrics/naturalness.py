"""Naturalness by a non-intrusive judge: DNSMOS P.835 (Reddy et al., "DNSMOS P.835: a non-intrusive
perceptual objective speech quality metric to evaluate noise suppressors", ICASSP 2022).

DNSMOS is a network trained on listeners' ratings (ITU-T P.835 tests, 1-5 scale) that predicts, from
the audio alone (no reference), the quality of the speech (SIG), of the background (BAK) and overall
(OVRL); P.808 MOS is the older single-rating model run on the same audio. We run the ONNX models that
the ``speechmos`` wheel ships (offline, through onnxruntime). They hear 16 kHz audio in [-1, 1]:
waveforms are resampled (librosa, soxr) and clipped to [-1, 1] as :func:`multidiff.audio.files.write_wav`
writes them; the level is kept (no normalisation). DNSMOS scores 9.01 s windows at a 1 s hop and
averages them; speechmos, as Microsoft's reference script, doubles a shorter clip (end to end) until
it is at least 9.01 s long. Clips under :data:`MIN_SECONDS` are refused: repeated 36 times or more,
the judge would hear the repetition rather than the voice (and an empty clip would never end).

Needs the ``bench`` extra: ``pip install "multidiff[bench]"`` (or ``pip install speechmos onnxruntime``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["dnsmos", "dnsmos_mean", "require_speechmos", "DNSMOS_SAMPLE_RATE", "MIN_SECONDS", "KEYS"]

DNSMOS_SAMPLE_RATE = 16000  # the P.835 and P.808 models are trained on 16 kHz audio
MIN_SECONDS = 0.25          # shortest clip scored (speechmos tiles clips up to 9.01 s)
KEYS = ("ovrl", "sig", "bak", "p808_mos")
_EXTRA = 'pip install speechmos onnxruntime (or pip install "multidiff[bench]")'


def require_speechmos():
    """speechmos' DNSMOS module, imported on first use (optional: an ImportError says how to install it)."""
    try:
        from speechmos import dnsmos as module
    except ImportError as err:
        raise ImportError(f"DNSMOS needs speechmos and onnxruntime ({err}): {_EXTRA}") from err
    return module


def _audio(wav, sample_rate: int) -> np.ndarray:
    """A new float64 array of ``wav`` at 16 kHz, clipped to [-1, 1]; refuses what DNSMOS cannot score."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    wav = np.asarray(wav)
    if wav.dtype.kind in "biu":
        raise TypeError(f"DNSMOS takes float audio in [-1, 1], got {wav.dtype}; scale int16 PCM by 1/32768 first")
    if wav.dtype.kind != "f":
        raise TypeError(f"DNSMOS takes real float audio in [-1, 1], got {wav.dtype}")
    if wav.ndim != 1:
        raise ValueError(f"DNSMOS takes one mono clip, a 1-D array; got shape {wav.shape} (downmix or split it first)")
    if wav.size == 0:
        raise ValueError("the audio is empty; DNSMOS needs a clip to score")
    if not np.isfinite(wav).all():
        raise ValueError(f"the audio has {int((~np.isfinite(wav)).sum())} non-finite samples (NaN or inf)")
    seconds = wav.size / sample_rate
    if seconds < MIN_SECONDS:
        raise ValueError(f"the clip is {seconds:.3f} s long; DNSMOS needs at least {MIN_SECONDS} s (it scores 9.01 s "
                         f"windows and repeats a shorter clip up to that length)")
    x = wav.astype(np.float64)  # a copy: the caller's array is never touched
    if sample_rate != DNSMOS_SAMPLE_RATE:
        import librosa

        x = librosa.resample(x, orig_sr=sample_rate, target_sr=DNSMOS_SAMPLE_RATE, res_type="soxr_hq")
    return np.clip(x, -1.0, 1.0)  # resampling can overshoot a full-scale input


def dnsmos(wav: np.ndarray, sample_rate: int) -> dict:
    """DNSMOS P.835 of one mono clip: ``{"ovrl", "sig", "bak", "p808_mos"}`` (MOS, 1-5; higher is better).

    ``wav``: float audio in [-1, 1] (samples beyond are clipped) at ``sample_rate`` Hz, at least
    :data:`MIN_SECONDS` long; it is resampled to 16 kHz and not modified."""
    x = _audio(wav, sample_rate)
    scores = require_speechmos().run(x, sr=DNSMOS_SAMPLE_RATE)
    out = {"ovrl": float(scores["ovrl_mos"]), "sig": float(scores["sig_mos"]), "bak": float(scores["bak_mos"])}
    if "p808_mos" in scores:
        out["p808_mos"] = float(scores["p808_mos"])
    return out


def dnsmos_mean(wavs: Sequence[np.ndarray], sample_rate: int) -> dict:
    """:func:`dnsmos` of each clip of ``wavs``, averaged per key over the clips (each clip counts once)."""
    wavs = list(wavs)
    if not wavs:
        raise ValueError("dnsmos_mean() needs at least one clip")
    scores = [dnsmos(w, sample_rate) for w in wavs]
    return {k: float(np.mean([s[k] for s in scores])) for k in KEYS if all(k in s for s in scores)}
