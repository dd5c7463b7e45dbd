"""LJ Speech layout adapter (Ito & Johnson 2017): ``metadata.csv`` (``id|raw text|normalized text``,
no header, no quoting) + ``wavs/ID.wav`` or ``wavs/ID.flac``.

Audio is read with soundfile, stereo is down-mixed, and other sample rates are resampled (librosa's
soxr backend) with a warning. The full download (``LJSpeech-1.1``) and the shared 300-clip subset
(``ljspeech_subset``) read the same way.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .fetch import data_roots

__all__ = ["Utterance", "read_metadata", "load_audio", "locate_ljspeech", "split_holdout", "FOLDERS"]

FOLDERS = ("ljspeech_subset", "LJSpeech-1.1")  # folder names searched under the data roots


@dataclass(frozen=True)
class Utterance:
    id: str      # e.g. "LJ001-0001"
    text: str    # normalized transcript when the metadata has one, else the raw one
    path: Path   # the audio file


def locate_ljspeech(path: Optional[str | Path] = None) -> Path:
    """The LJ Speech folder: ``path`` if given, else the first of :data:`FOLDERS` under the data roots."""
    if path is not None:
        return Path(path).expanduser()
    for root in data_roots():
        for name in FOLDERS:
            if (root / name / "metadata.csv").is_file():
                return root / name
    raise FileNotFoundError(f"no LJ Speech folder ({' or '.join(FOLDERS)}) under "
                            f"{', '.join(str(r) for r in data_roots())}; download LJSpeech-1.1 from "
                            "https://keithito.com/LJ-Speech-Dataset/ and pass its folder, or set MULTIDIFF_DATA")


def read_metadata(root: str | Path) -> list[Utterance]:
    """Utterances of an LJ Speech-style folder, in file order. Missing audio files are an error."""
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"{root} has no metadata.csv; an LJ Speech folder holds metadata.csv "
                                "(lines 'id|raw text|normalized text') and wavs/ID.wav")
    items = []
    for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 2 or not parts[0].strip():
            raise ValueError(f"{meta}:{n}: expected 'id|raw text|normalized text', got {line[:80]!r}")
        uid = parts[0].strip()
        text = (parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]).strip()
        audio = next((root / "wavs" / f"{uid}{ext}" for ext in (".wav", ".flac")
                      if (root / "wavs" / f"{uid}{ext}").is_file()), None)
        if audio is None:
            raise FileNotFoundError(f"{meta}:{n}: no audio for {uid} (looked for wavs/{uid}.wav and .flac)")
        items.append(Utterance(uid, text, audio))
    if not items:
        raise ValueError(f"{meta} lists no utterances")
    return items


def load_audio(path: str | Path, sample_rate: int = 22050) -> np.ndarray:
    """Mono float32 waveform at ``sample_rate`` (downmixed; resampled with a warning if needed)."""
    import soundfile as sf

    wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    wav = wav.mean(axis=1)
    if sr != sample_rate:
        import librosa

        warnings.warn(f"{path}: resampling {sr} Hz to {sample_rate} Hz", stacklevel=2)
        wav = librosa.resample(wav, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq").astype(np.float32)
    return wav


def split_holdout(items: list, holdout: int = 20) -> tuple[list, list]:
    """``(train, test)``: the last ``holdout`` items are held out for evaluation."""
    if not 0 <= holdout < len(items):
        raise ValueError(f"holdout must lie in [0, {len(items) - 1}] for {len(items)} utterances, got {holdout}")
    return (items[:-holdout], items[-holdout:]) if holdout else (list(items), [])
