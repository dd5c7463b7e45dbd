"""The TTS benchmark protocol: intelligibility (WER / CER by an offline recogniser), naturalness
(DNSMOS P.835, optional), MCD-DTW, log-F0 RMSE and real-time factors against recorded clips, with the
recorded audio and its mel through the vocoder as the ceiling."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...audio.mel import mel_spectrogram
from ...audio.vocoder import Vocoder
from ...core.samplers import resolve
from ...metrics.tables import markdown_table
from .api import TTS

__all__ = ["evaluate", "EvalResult", "curve_point", "RECORDED", "VOCODED", "MOS_KEYS"]

RECORDED = "recorded audio"           # the ceiling rows: the clip itself,
VOCODED = "recorded mel + vocoder"    # and its mel through the voice's vocoder (Griffin-Lim by default)
MOS_KEYS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak")  # with mos=True: DNSMOS P.835 averaged over the clips


@dataclass
class EvalResult:
    """What :func:`evaluate` returns: one row of metrics per sampler setting, example mels and transcripts."""
    rows: list[dict] = field(default_factory=list)  # one row per setting, averaged over clips (WER/CER pooled)
    examples: dict = field(default_factory=dict)      # first clip: {"ground truth", "prior mu", setting: mel}
    transcripts: dict = field(default_factory=dict)   # with asr: {"reference": [...], setting: [what the recogniser heard]}

    def table(self) -> str:
        """The rows as a Markdown table (floats to 4 decimals; a metric not computed is left empty)."""
        keys = ["setting", "wer", "cer", "mcd", "log_f0_rmse", "f0_clips", "rtf_decoder", "rtf_end_to_end"]
        if any(k in r for r in self.rows for k in MOS_KEYS):  # the DNSMOS columns when they were measured
            keys[3:3] = list(MOS_KEYS)
        cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
        return markdown_table(keys, [[r.get(k) for k in keys] for r in self.rows], [cell] * len(keys), missing="")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _recognizer(asr):
    """``asr``: False/None (no WER), True (PocketSphinx), or a ``Recognizer``-like object with ``score``."""
    if asr is None or asr is False:
        return None
    if asr is True:
        from ...metrics.asr import Recognizer

        return Recognizer()
    if not callable(getattr(asr, "score", None)):
        raise TypeError(f"asr must be True, False or a multidiff.metrics.asr.Recognizer, got {type(asr).__name__}")
    return asr


def _row(name: str, n: Optional[int], items, wavs, refs, sample_rate: int, with_f0: bool, recognizer, result,
         times: Optional[tuple[Optional[float], float]], mos: bool = False) -> dict:
    """Score the waveforms ``wavs`` of one setting against the recorded ``refs`` features."""
    from ...metrics.audio import compare_features, speech_features

    scores = [compare_features(ref, speech_features(w, sample_rate, with_f0=with_f0)) for ref, w in zip(refs, wavs)]
    row = {"setting": name, "sampler_steps": n, "clips": len(items), "mcd": float(np.mean([s["mcd"] for s in scores]))}
    if with_f0:  # clips where pYIN finds no frame voiced in both are left out of the mean
        f0 = [s["log_f0_rmse"] for s in scores if not math.isnan(s["log_f0_rmse"])]
        row["log_f0_rmse"] = float(np.mean(f0)) if f0 else float("nan")
        row["f0_clips"] = len(f0)
    if recognizer is not None:
        heard = recognizer.score([u.text for u in items], wavs, sample_rate)
        row["wer"], row["cer"] = heard["wer"], heard["cer"]
        result.transcripts.setdefault("reference", heard["references"])
        result.transcripts[name] = heard["hypotheses"]
    if mos:
        from ...metrics.naturalness import dnsmos_mean

        judged = dnsmos_mean(wavs, sample_rate)
        row.update({f"dnsmos_{k}": judged[k] for k in ("ovrl", "sig", "bak")})
    if times is not None:  # (decoder seconds or None, end-to-end seconds)
        dur = sum(len(w) for w in wavs) / sample_rate
        if times[0] is not None:
            row["rtf_decoder"] = times[0] / dur
        row["rtf_end_to_end"] = times[1] / dur
    return row


def evaluate(model: TTS, items, sampler_steps: Sequence[int] = (4, 10, 50), sampler: Optional[str] = None,
             temperature: Optional[float] = None, with_f0: bool = True, vocoder: Optional[Vocoder] = None,
             seed: int = 0, progress: Optional[Callable[[str], None]] = None, asr=False, ceiling: bool = False,
             prior: bool = True, mos: bool = False) -> EvalResult:
    """Score syntheses of the transcripts of ``items`` against their *recorded* audio.

    Rows: with ``ceiling``, the recorded audio itself (``"recorded audio"``: MCD 0, its WER is the
    recogniser's own error) and the recorded mel through the vocoder (``"recorded mel + vocoder"``);
    with ``prior``, the encoder's ``mu`` alone (``"prior"``); then the diffusion decoder with
    ``sampler`` at each step count of ``sampler_steps`` (``"euler_ode-10"``). Each row holds
    ``sampler_steps`` (0 for the prior, None for the ceiling), MCD-DTW, log-F0 RMSE (``with_f0``),
    and with ``asr`` (True: :class:`multidiff.metrics.asr.Recognizer`, or a recogniser) ``wer`` and
    ``cer`` pooled over the clips (:mod:`multidiff.metrics.asr`), and with ``mos`` ``dnsmos_ovrl``,
    ``dnsmos_sig`` and ``dnsmos_bak`` averaged over the clips (DNSMOS P.835 naturalness,
    :mod:`multidiff.metrics.naturalness`; needs speechmos). RTF = synthesis time / audio duration,
    decoder only and end to end (text -> waveform, vocoder included), one clip at a time;
    the vocoder row's end-to-end RTF is the vocoder's."""
    from ...datasets.ljspeech import load_audio
    from ...metrics.audio import speech_features

    if not items:
        raise ValueError("evaluate() needs at least one held-out utterance")
    recognizer = _recognizer(asr)
    if mos:  # fail before any synthesis when speechmos is missing
        from ...metrics.naturalness import require_speechmos

        require_speechmos()
    sr = model.sample_rate
    recorded = [load_audio(u.path, sr) for u in items]
    refs = [speech_features(w, sr, with_f0=with_f0) for w in recorded]
    result = EvalResult(examples={"ground truth": mel_spectrogram(torch.from_numpy(recorded[0]), model.mel)})
    score = lambda name, n, wavs, times: _row(name, n, items, wavs, refs, sr, with_f0, recognizer, result, times, mos)

    def report(row):
        result.rows.append(row)
        if progress:
            heard = f", WER {row['wer']:.3f}, CER {row['cer']:.3f}" if "wer" in row else ""
            heard += f", DNSMOS OVRL {row['dnsmos_ovrl']:.2f}" if "dnsmos_ovrl" in row else ""
            progress(f"{row['setting']}: MCD {row['mcd']:.3f} dB{heard}")

    if ceiling:
        report(score(RECORDED, None, recorded, None))
        wavs, spent = [], 0.0
        for w in recorded:
            mel = mel_spectrogram(torch.from_numpy(w), model.mel)
            t0 = time.perf_counter()
            wavs.append(model.vocode(mel, vocoder))
            spent += time.perf_counter() - t0
        report(score(VOCODED, None, wavs, (None, spent)))
    sampler = resolve(sampler) if sampler else model.diffusion.default_sampler  # stored by its registered name
    settings = ([("prior", 0)] if prior else []) + [(f"{sampler}-{n}", n) for n in sampler_steps]
    for name, n in settings:
        wavs, dec_t, e2e_t = [], 0.0, 0.0
        for u in items:  # one clip at a time: RTF as a user synthesizing one sentence sees it
            _sync(model.device)
            t0 = time.perf_counter()
            mu_y, y_mask, y_len = model.prior([u.text])
            _sync(model.device)
            t1 = time.perf_counter()
            mel = mu_y if n == 0 else model.decode(mu_y, y_mask, n, temperature, sampler, seed)
            _sync(model.device)
            t2 = time.perf_counter()
            wavs.append(model.vocode(mel[0, :, : int(y_len[0])], vocoder))
            t3 = time.perf_counter()
            if u is items[0]:
                result.examples["prior mu" if n == 0 else name] = mel[0, :, : int(y_len[0])].cpu()
            dec_t, e2e_t = dec_t + (t2 - t1), e2e_t + (t3 - t0)
        report(score(name, n, wavs, (dec_t if n else 0.0, e2e_t)))
    return result


def curve_point(model: TTS, items, asr=True, sampler_steps: int = 10, sampler: Optional[str] = None,
                temperature: Optional[float] = None, seed: int = 0, vocoder: Optional[Vocoder] = None, mos: bool = False) -> dict:
    """One learning-curve point: :func:`evaluate` of the prior and of the decoder at ``sampler_steps``
    on ``items``, without F0 (pYIN is the slow part) -> ``{"wer", "cer", "mcd", "rtf_decoder",
    "prior_wer", "prior_cer", "prior_mcd", "clips", "sampler", "sampler_steps", "eval_seconds"}``,
    with ``mos`` also ``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak`` and their ``prior_`` versions.
    The same numbers as those rows of :func:`evaluate` with ``with_f0=False``."""
    t0 = time.perf_counter()
    res = evaluate(model, items, (sampler_steps,), sampler, temperature, with_f0=False, vocoder=vocoder, seed=seed,
                   asr=asr, mos=mos)
    prior, decoder = res.rows
    out = {"clips": len(items), "sampler": resolve(sampler) if sampler else model.diffusion.default_sampler,
           "sampler_steps": sampler_steps}
    out.update({k: decoder[k] for k in ("wer", "cer", "mcd", "rtf_decoder", *MOS_KEYS) if k in decoder})
    out.update({f"prior_{k}": prior[k] for k in ("wer", "cer", "mcd", *MOS_KEYS) if k in prior})
    out["eval_seconds"] = time.perf_counter() - t0
    return out
