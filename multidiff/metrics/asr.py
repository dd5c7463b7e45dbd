"""Intelligibility by an offline speech recogniser: word and character error rates (WER, CER).

The recogniser is PocketSphinx 5 (Huggins-Daines et al., ICASSP 2006) with the US-English acoustic
model, language model and CMU dictionary that its wheel ships, so it runs offline and is the same
on every machine. It hears 16 kHz mono 16-bit audio: waveforms are resampled (soxr) and scaled to
a peak of 0.9, so that the score does not depend on the level of a synthesis. Each clip is decoded
as a whole utterance (cepstral mean normalisation over the clip) with the front end reset before it,
so a clip's transcript does not depend on the clips decoded before it.

Reference and transcript are normalised the same way (:func:`normalize_transcript`): the TTS
frontend's normalisation (numbers, currency, abbreviations spelled out), accents removed, lower
case, punctuation and hyphens to spaces (apostrophes inside words kept). WER and CER come from
``jiwer`` (Levenshtein alignment): substitutions + deletions + insertions, summed over all clips,
divided by the number of reference words (characters, spaces between words included).

Needs the ``bench`` extra: ``pip install "multidiff[bench]"`` (pocketsphinx, jiwer).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import numpy as np

from ..audio.text import normalize_text

__all__ = ["normalize_transcript", "error_rates", "word_error_rate", "char_error_rate", "Recognizer",
           "ASR_SAMPLE_RATE", "PEAK"]

ASR_SAMPLE_RATE = 16000  # PocketSphinx's en-us acoustic model is trained on 16 kHz audio
PEAK = 0.9               # every waveform is scaled to this peak before it is quantised to int16
_EXTRA = 'pip install "multidiff[bench]" (or pip install pocketsphinx jiwer)'


def normalize_transcript(text: str) -> str:
    """The form in which a reference and a recogniser's transcript are compared:
    ``"Dr. Smith's 2nd-floor office, 1901!"`` -> ``"doctor smith's second floor office nineteen oh one"``."""
    text = normalize_text(text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z']+", " ", text)
    text = re.sub(r"(?<![a-z])'+|'+(?![a-z])", " ", text)  # quotes, not the apostrophe of "don't"
    return re.sub(r"\s+", " ", text).strip()


def _as_list(texts, name: str) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{name} must be strings, got {bad[0]}")
    return texts


def error_rates(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> dict:
    """``{"wer", "cer", "words", "chars", "references", "hypotheses"}`` of transcripts against references,
    both normalised by :func:`normalize_transcript` (module docstring); ``words`` / ``chars`` count the
    normalised reference words / characters that the rates divide by."""
    try:
        import jiwer
    except ImportError as err:
        raise ImportError(f"word error rates need jiwer: {_EXTRA}") from err
    refs, hyps = _as_list(references, "references"), _as_list(hypotheses, "hypotheses")
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references and {len(hyps)} hypotheses; give one transcript per reference")
    if not refs:
        raise ValueError("give at least one reference")
    refs, hyps = [normalize_transcript(r) for r in refs], [normalize_transcript(h) for h in hyps]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(f"reference {empty[0]} has no words after normalisation; an error rate needs words to count")
    # jiwer aligns each pair; an empty transcript is all deletions, so it is compared as such
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return {"wer": float(words.wer), "cer": float(chars.cer), "words": sum(len(r.split()) for r in refs),
            "chars": sum(len(r) for r in refs), "references": refs, "hypotheses": hyps}


def word_error_rate(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Word errors (substitutions + deletions + insertions) over reference words, summed over all pairs."""
    return error_rates(references, hypotheses)["wer"]


def char_error_rate(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Character edits over reference characters (spaces included), summed over all pairs."""
    return error_rates(references, hypotheses)["cer"]


def to_pcm16(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """A mono float waveform as the recogniser hears it: 16 kHz (soxr), peak :data:`PEAK`, int16."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1 or not len(wav):
        raise ValueError(f"expected a non-empty mono waveform (samples,), got shape {wav.shape}")
    if not np.isfinite(wav).all():
        raise ValueError("the waveform holds NaN or inf values")
    if sample_rate != ASR_SAMPLE_RATE:
        import librosa

        wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=ASR_SAMPLE_RATE, res_type="soxr_hq")
    peak = float(np.abs(wav).max())
    if peak > 0:
        wav = wav * (PEAK / peak)
    return np.round(np.clip(wav, -1, 1) * 32767).astype(np.int16)


class Recognizer:
    """PocketSphinx's US-English recogniser: ``transcribe(wav, sample_rate) -> str`` (lower case words).

    ``config`` goes to ``pocketsphinx.Decoder`` (e.g. ``lm=`` / ``dict=`` for other models); by default
    the models shipped in the wheel. The decoder is built on first use (about 0.3 s) and reused."""

    def __init__(self, **config):
        self.config = {"loglevel": "FATAL", **config, "samprate": ASR_SAMPLE_RATE}
        self._decoder = None

    def _get_decoder(self):
        if self._decoder is None:
            try:
                from pocketsphinx import Decoder
            except ImportError as err:
                raise ImportError(f"the offline recogniser needs pocketsphinx: {_EXTRA}") from err
            self._decoder = Decoder(**self.config)
        return self._decoder

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        """The words PocketSphinx hears in a mono waveform at ``sample_rate`` Hz ("" if none)."""
        pcm = to_pcm16(wav, sample_rate)
        decoder = self._get_decoder()
        # the front end keeps a noise estimate from clip to clip (remove_noise): reset it, so that a
        # transcript does not depend on which clips were decoded before (as a fresh decoder, but 0.3 s faster)
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)  # CMN over this clip alone
        decoder.end_utt()
        hyp = decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        return re.sub(r"\s+", " ", re.sub(r"\(\d+\)|<[^>]*>|\[[^\]]*\]", " ", text)).strip()  # alternates, fillers

    __call__ = transcribe

    def score(self, references: Sequence[str], wavs: Sequence[np.ndarray], sample_rate: int) -> dict:
        """:func:`error_rates` of the transcripts of ``wavs`` against ``references``."""
        references, wavs = list(references), list(wavs)
        if len(references) != len(wavs):
            raise ValueError(f"got {len(references)} references and {len(wavs)} waveforms")
        return error_rates(references, [self.transcribe(w, sample_rate) for w in wavs])
