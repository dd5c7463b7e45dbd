"""The TTS benchmark protocol: MCD-DTW, log-F0 RMSE and real-time factors against recorded clips."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...audio.mel import mel_spectrogram
from ...audio.vocoder import Vocoder
from ...core.deprecation import renamed_kwargs
from ...metrics.tables import markdown_table
from .api import TTS

__all__ = ["evaluate", "EvalResult"]


@dataclass
class EvalResult:
    rows: list[dict] = field(default_factory=list)  # one row per decoder setting, averaged over clips
    examples: dict = field(default_factory=dict)      # first clip: {"ground truth", "prior mu", setting: mel}

    def table(self) -> str:
        """The rows as a Markdown table (floats to 4 decimals; a metric not computed is left empty)."""
        keys = ["setting", "mcd", "log_f0_rmse", "f0_clips", "rtf_decoder", "rtf_end_to_end"]
        cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
        return markdown_table(keys, [[r.get(k) for k in keys] for r in self.rows], [cell] * len(keys), missing="")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@renamed_kwargs(steps="sampler_steps")
def evaluate(model: TTS, items, sampler_steps: Sequence[int] = (4, 10, 50), sampler: str = "euler_ode",
             temperature: float = 1.5, with_f0: bool = True, vocoder: Optional[Vocoder] = None,
             seed: int = 0, progress: Optional[Callable[[str], None]] = None) -> EvalResult:
    """MCD-DTW and log-F0 RMSE against the real clips ``items`` (vocoded ground truth is *not* used:
    the reference is the recorded audio), plus real-time factors, for the prior ``mu`` alone
    ("prior") and the diffusion decoder at each step count of ``sampler_steps`` (``steps`` is its
    old name, deprecated). RTF = synthesis time / audio duration, decoder only (diffusion sampling)
    and end to end (text -> waveform, vocoder included). Each row holds ``sampler_steps`` (0 for
    the prior; the key was ``steps`` before)."""
    from ...datasets.ljspeech import load_audio
    from ...metrics.audio import compare_features, speech_features

    if not items:
        raise ValueError("evaluate() needs at least one held-out utterance")
    wavs = [load_audio(u.path, model.sample_rate) for u in items]
    refs = [speech_features(w, model.sample_rate, with_f0=with_f0) for w in wavs]
    settings = [("prior", 0)] + [(f"{sampler}-{n}", n) for n in sampler_steps]
    result = EvalResult(examples={"ground truth": mel_spectrogram(torch.from_numpy(wavs[0]), model.mel)})
    for name, n in settings:
        scores, dec_t, e2e_t, dur = [], 0.0, 0.0, 0.0
        for u, ref in zip(items, refs):  # one clip at a time: RTF as a user synthesizing one sentence sees it
            _sync(model.device)
            t0 = time.perf_counter()
            mu_y, y_mask, y_len = model.prior([u.text])
            _sync(model.device)
            t1 = time.perf_counter()
            mel = mu_y if n == 0 else model.decode(mu_y, y_mask, n, temperature, sampler, seed)
            _sync(model.device)
            t2 = time.perf_counter()
            wav = model.vocode(mel[0, :, : int(y_len[0])], vocoder)
            t3 = time.perf_counter()
            if u is items[0]:
                result.examples["prior mu" if n == 0 else name] = mel[0, :, : int(y_len[0])].cpu()
            dec_t, e2e_t, dur = dec_t + (t2 - t1), e2e_t + (t3 - t0), dur + len(wav) / model.sample_rate
            scores.append(compare_features(ref, speech_features(wav, model.sample_rate, with_f0=with_f0)))
        row = {"setting": name, "sampler_steps": n, "clips": len(items),
               "mcd": float(np.mean([s["mcd"] for s in scores])),
               "rtf_decoder": dec_t / dur if n else 0.0, "rtf_end_to_end": e2e_t / dur}
        if with_f0:  # clips where pYIN finds no frame voiced in both are left out of the mean
            f0 = [s["log_f0_rmse"] for s in scores if not math.isnan(s["log_f0_rmse"])]
            row["log_f0_rmse"] = float(np.mean(f0)) if f0 else float("nan")
            row["f0_clips"] = len(f0)
        result.rows.append(row)
        if progress:
            progress(f"{name}: MCD {row['mcd']:.3f} dB")
    return result
