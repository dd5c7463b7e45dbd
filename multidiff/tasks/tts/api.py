"""Text to speech with a Grad-TTS diffusion decoder (Popov et al., ICML 2021).

The encoder predicts a per-token mean mel ``mu`` and log durations; in training, monotonic alignment
search (:mod:`multidiff.audio.alignment`) expands ``mu`` to frames. The decoder is the core's VP-SDE
(beta0 = 0.05, beta1 = 20) on the shifted mel ``y = x - mu``: Grad-TTS' forward SDE
``dx = 0.5 (mu - x) beta dt + sqrt(beta) dW`` is exactly the VP-SDE of ``y``, so ``y_t = sqrt(ab) y_0 +
sqrt(1 - ab) eps`` and the U-Net is trained with the eps loss. Sampling starts at
``y_1 = eps / temperature`` (Grad-TTS' convention: noise is *divided* by the temperature, so
temperature > 1 is less noisy; Grad-TTS uses 1.5) and runs the core's ``euler_ode`` (Grad-TTS' Euler
steps of the probability-flow ODE, at mid-point times ``1 - (i + 0.5) / n``) or ``dpm_solver``
(DPM-Solver++(2M) over ``vp_grid`` from t = 1 to 1e-3). Loss = duration + prior + diffusion, as Grad-TTS.

    model = train("LJSpeech-1.1", out="ckpt", max_steps=2000)
    wav, sr = load("ckpt").synthesize("Printing, in the only sense.", n_steps=10)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...audio.alignment import durations_to_path, maximum_path
from ...audio.mel import MelConfig, mel_spectrogram
from ...audio.text import TextFrontend
from ...audio.vocoder import GriffinLim, Vocoder
from ...core import losses, samplers
from ...core.checkpoint import load_checkpoint, save_checkpoint
from ...core.device import resolve_device
from ...core.schedules import vp_alpha_bar
from ...core.training import TrainConfig, TrainResult, fit
from ...core.validate import check_whole
from ...nets.gradtts import GradTTSConfig, GradTTSNet, fit_length, sequence_mask

__all__ = ["DiffusionConfig", "PRESETS", "TTS", "gradtts_loss", "collate", "train", "load", "evaluate", "SAMPLERS"]

SAMPLERS = ("euler_ode", "dpm_solver")
# network sizes: "gradtts" is the paper's (14.8 M parameters); the others fit CPU budgets
PRESETS = {
    "gradtts": {},
    "small": dict(enc_channels=96, enc_filter=384, enc_layers=4, dp_filter=128, dec_dim=32, dec_attn_dim=16),
    "tiny": dict(enc_channels=64, enc_filter=128, enc_layers=2, dp_filter=64, dec_dim=16, dec_mults=(1, 2),
                 dec_attn_dim=8),
}
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class DiffusionConfig:
    beta0: float = 0.05         # VP-SDE beta(0) (Grad-TTS)
    beta1: float = 20.0         # VP-SDE beta(1) (Grad-TTS)
    segment_frames: int = 172   # random mel segment the decoder trains on (Grad-TTS: 2 s = 172 frames)

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        return vp_alpha_bar(t, self.beta0, self.beta1)


def collate(items: Sequence[tuple[list[int], torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad ``(token_ids, log_mel (n_mels, frames))`` pairs into a batch dict."""
    x_len = torch.tensor([len(t) for t, _ in items])
    y_len = torch.tensor([m.shape[-1] for _, m in items])
    tokens = torch.zeros(len(items), int(x_len.max()), dtype=torch.long)
    mels = torch.zeros(len(items), items[0][1].shape[0], int(y_len.max()))
    for i, (t, m) in enumerate(items):
        tokens[i, : len(t)] = torch.as_tensor(t)
        mels[i, :, : m.shape[-1]] = m
    return {"tokens": tokens, "x_lengths": x_len, "mels": mels, "y_lengths": y_len}


def _log_prior(y: torch.Tensor, mu_x: torch.Tensor) -> torch.Tensor:
    """``log N(y_j; mu_i, I)`` for every token i and frame j: ``(batch, tokens, frames)``."""
    n_feats = y.shape[1]
    cross = torch.einsum("bfi,bfj->bij", mu_x, y)
    return cross - 0.5 * (mu_x ** 2).sum(1).unsqueeze(-1) - 0.5 * (y ** 2).sum(1).unsqueeze(1) - 0.5 * n_feats * _LOG_2PI


def _random_segments(y_len: torch.Tensor, size: int, generator=None) -> torch.Tensor:
    room = (y_len - size).clamp(min=0).float()
    return (torch.rand(len(y_len), generator=generator, device=y_len.device) * (room + 1)).floor().long()


def gradtts_loss(net: GradTTSNet, batch: dict, diffusion: DiffusionConfig = DiffusionConfig(),
                 parts: Optional[dict] = None) -> torch.Tensor:
    """Grad-TTS' training loss ``duration + prior + diffusion`` on a :func:`collate` batch.

    Durations come from MAS between the mels and the encoder means; the prior loss is the Gaussian
    NLL of the mel under the aligned ``mu``; the diffusion loss is the core's masked eps MSE on a random
    ``segment_frames`` crop of ``y = mel - mu``. ``parts`` (a dict) receives the three terms."""
    tokens, x_len, y, y_len = batch["tokens"], batch["x_lengths"], batch["mels"], batch["y_lengths"]
    if (y_len < x_len).any():
        raise ValueError("an utterance has fewer mel frames than text tokens; drop clips with very short audio")
    mu_x, logw, x_mask = net.encode(tokens, x_len)
    y = y.to(mu_x.dtype)
    y_mask = sequence_mask(y_len, y.shape[-1]).to(mu_x.dtype)
    attn_mask = x_mask.transpose(1, 2) * y_mask.unsqueeze(1)
    with torch.no_grad():
        attn = maximum_path(_log_prior(y.float(), mu_x.float()), attn_mask)
    logw_target = torch.log(1e-8 + attn.sum(-1, keepdim=True).transpose(1, 2)) * x_mask
    dur_loss = ((logw - logw_target) ** 2).sum() / x_len.sum()
    mu_y = torch.einsum("bfi,bij->bfj", mu_x, attn.to(mu_x.dtype))
    n_feats = y.shape[1]
    prior_loss = (0.5 * ((y - mu_y) ** 2 + _LOG_2PI) * y_mask.unsqueeze(1)).sum() / (y_mask.sum() * n_feats)

    size = fit_length(min(diffusion.segment_frames, int(y_len.max())), net.n_down)
    start = _random_segments(y_len, size)
    idx = (start.unsqueeze(1) + torch.arange(size, device=y.device)).clamp(max=y.shape[-1] - 1)
    take = lambda a: torch.gather(a, -1, idx.unsqueeze(1).expand(-1, a.shape[1], -1))
    seg_mask = (start.unsqueeze(1) + torch.arange(size, device=y.device) < y_len.unsqueeze(1)).to(y.dtype)
    y_seg, mu_seg = take(y) * seg_mask.unsqueeze(1), take(mu_y) * seg_mask.unsqueeze(1)
    t = losses.draw_continuous_t(len(y), device=y.device, t_min=1e-5, t_max=1 - 1e-5)
    model = lambda y_t, tt: net.denoise(y_t, seg_mask, mu_seg, tt)
    diff_loss = losses.eps_mse(model, y_seg - mu_seg, t, diffusion.alpha_bar,
                               mask=seg_mask.unsqueeze(1).expand_as(y_seg))
    if parts is not None:
        parts.update(duration=float(dur_loss.detach()), prior=float(prior_loss.detach()),
                     diffusion=float(diff_loss.detach()))
    return dur_loss + prior_loss + diff_loss


def _grid(sampler: str, n_steps: int, diffusion: DiffusionConfig) -> samplers.Grid:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    n_steps = check_whole("n_steps", n_steps)
    if sampler == "euler_ode":  # Grad-TTS evaluates the score at step mid-points 1 - (i + 0.5) / n
        t_start = 1 - 0.5 / n_steps
        return samplers.vp_grid(n_steps, diffusion.alpha_bar, t_start, min(0.5 / n_steps, t_start / 2))
    return samplers.vp_grid(n_steps, diffusion.alpha_bar, 1.0, 1e-3)


class TTS:
    """A trained Grad-TTS voice: text -> mel (diffusion decoder) -> waveform (``vocoder``).

    ``vocoder`` is any ``log_mel -> waveform`` callable (:mod:`multidiff.audio.vocoder`); Griffin-Lim by default.
    """

    def __init__(self, net: GradTTSNet, frontend: TextFrontend, mel: MelConfig = MelConfig(),
                 diffusion: DiffusionConfig = DiffusionConfig(), vocoder: Optional[Vocoder] = None,
                 device: str | torch.device = "auto"):
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.frontend, self.mel, self.diffusion = frontend, mel, diffusion
        self.vocoder = vocoder if vocoder is not None else GriffinLim(mel)
        self.history: list[dict] = []

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    @torch.no_grad()
    def prior(self, texts: Sequence[str], length_scale: float = 1.0):
        """Encoder output for ``texts``: ``(mu_y (batch, n_feats, frames), y_mask (batch, frames), lengths)``."""
        if isinstance(texts, str):
            raise TypeError("prior() takes a list of texts; use synthesize_mel() for one string")
        if length_scale <= 0:
            raise ValueError(f"length_scale must be > 0, got {length_scale}")
        ids = [self.frontend.encode(t) for t in texts]
        batch = collate([(i, torch.zeros(1, 1)) for i in ids])
        tokens, x_len = batch["tokens"].to(self.device), batch["x_lengths"].to(self.device)
        mu_x, logw, x_mask = self.net.encode(tokens, x_len)
        w = torch.ceil(torch.ceil(torch.exp(logw) * x_mask) * length_scale).squeeze(1)  # Grad-TTS: ceil, then scale
        y_len = w.sum(1).clamp(min=1).long()
        frames = fit_length(int(y_len.max()), self.net.n_down)
        attn = durations_to_path(w, frames)
        mu_y = torch.einsum("bfi,bij->bfj", mu_x, attn)
        return mu_y, sequence_mask(y_len, frames).to(mu_y.dtype), y_len

    @torch.no_grad()
    def decode(self, mu_y: torch.Tensor, y_mask: torch.Tensor, n_steps: int = 10, temperature: float = 1.5,
               sampler: str = "euler_ode", seed: Optional[int] = 0) -> torch.Tensor:
        """Diffusion decoder: aligned means -> mels ``(batch, n_feats, frames)`` (padding zeroed)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (noise is divided by it), got {temperature}")
        grid = _grid(sampler, n_steps, self.diffusion)
        gen = torch.Generator(device=self.device)
        if seed is None:
            gen.seed()  # fresh entropy, without touching the global RNG
        else:
            gen.manual_seed(seed)
        y = torch.randn(mu_y.shape, generator=gen, device=self.device, dtype=mu_y.dtype) / temperature
        model = lambda y_t, t: self.net.denoise(y_t, y_mask, mu_y, t.to(mu_y.dtype))
        y0 = samplers.sample(sampler, model, y * y_mask.unsqueeze(1), grid, generator=gen)
        return (y0 + mu_y) * y_mask.unsqueeze(1)

    def synthesize_mels(self, texts: Sequence[str], n_steps: int = 10, temperature: float = 1.5,
                        sampler: str = "euler_ode", length_scale: float = 1.0, seed: Optional[int] = 0,
                        return_prior: bool = False):
        """One batched decoder run for several texts -> list of ``(n_feats, frames)`` mels (and priors)."""
        mu_y, y_mask, y_len = self.prior(list(texts), length_scale)
        mels = self.decode(mu_y, y_mask, n_steps, temperature, sampler, seed)
        out = [m[:, :n].cpu() for m, n in zip(mels, y_len.tolist())]
        return (out, [m[:, :n].cpu() for m, n in zip(mu_y, y_len.tolist())]) if return_prior else out

    def synthesize_mel(self, text: str, n_steps: int = 10, temperature: float = 1.5, sampler: str = "euler_ode",
                       length_scale: float = 1.0, seed: Optional[int] = 0) -> torch.Tensor:
        """Log-mel ``(n_feats, frames)`` of ``text`` (HiFi-GAN convention), for any vocoder."""
        return self.synthesize_mels([text], n_steps, temperature, sampler, length_scale, seed)[0]

    def vocode(self, mel: torch.Tensor, vocoder: Optional[Vocoder] = None) -> np.ndarray:
        wav = (vocoder or self.vocoder)(mel.to(self.device))
        return wav.detach().float().cpu().numpy()

    def synthesize(self, text: str, n_steps: int = 10, temperature: float = 1.5, sampler: str = "euler_ode",
                   length_scale: float = 1.0, seed: Optional[int] = 0,
                   vocoder: Optional[Vocoder] = None) -> tuple[np.ndarray, int]:
        """``(waveform float32 (samples,), sample_rate)`` for ``text``."""
        mel = self.synthesize_mel(text, n_steps, temperature, sampler, length_scale, seed)
        return self.vocode(mel, vocoder), self.sample_rate

    # -- persistence -------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"kind": "gradtts", "net": self.net.cfg.to_dict(), "frontend": self.frontend.config(),
                "mel": self.mel.to_dict(), "diffusion": self.diffusion.__dict__, "history": self.history}

    def save(self, directory: str | Path) -> Path:
        """Atomic safetensors + JSON checkpoint (core.checkpoint)."""
        return save_checkpoint(directory, {"model": self.net.state_dict()}, self.config())

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "auto",
             vocoder: Optional[Vocoder] = None) -> "TTS":
        directory = Path(directory)
        if not directory.exists():
            raise FileNotFoundError(f"no checkpoint at {directory}; train one with `multidiff tts train --out "
                                    f"{directory}` or tts.train(..., out=...)")
        if not (directory / "config.json").is_file() and (directory / "final" / "config.json").is_file():
            directory = directory / "final"
        states, cfg = load_checkpoint(directory)
        if cfg.get("kind") != "gradtts":
            raise ValueError(f"{directory} is not a Grad-TTS checkpoint (kind={cfg.get('kind')!r})")
        net = GradTTSNet(GradTTSConfig.from_dict(cfg["net"]))
        net.load_state_dict(states["model"])
        frontend = TextFrontend(**cfg["frontend"])
        mel = MelConfig(**cfg["mel"])
        model = cls(net, frontend, mel, DiffusionConfig(**cfg["diffusion"]), vocoder, device)
        model.history = cfg.get("history", [])
        return model


def load(directory: str | Path, device: str | torch.device = "auto", vocoder: Optional[Vocoder] = None) -> TTS:
    """Load a voice saved by :meth:`TTS.save` or :func:`train` (``out/final``)."""
    return TTS.load(directory, device, vocoder)


def prepare(items, frontend: TextFrontend, mel: MelConfig) -> list[tuple[list[int], torch.Tensor]]:
    """``(token ids, log-mel)`` for LJ Speech utterances (see :mod:`multidiff.datasets.ljspeech`)."""
    from ...datasets.ljspeech import load_audio

    out = []
    for u in items:
        wav = torch.from_numpy(load_audio(u.path, mel.sample_rate))
        out.append((frontend.encode(u.text), mel_spectrogram(wav, mel)))
    return out


def _loader(pairs, batch_size: int, shuffle: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(pairs, batch_size=batch_size, shuffle=shuffle, collate_fn=collate,
                                       generator=g, drop_last=shuffle and len(pairs) > batch_size)


def _ema_decay(max_steps: Optional[int]) -> float:
    """0.999 for long runs; shorter runs average over about a tenth of their steps (the core's EMA has
    no bias correction, so 0.999 would keep a short run near its initial weights)."""
    return 0.999 if max_steps is None or max_steps >= 10000 else max(0.0, 1 - 10 / max_steps)


def train(data: str | Path | Sequence, out: Optional[str | Path] = None, max_steps: Optional[int] = None,
          device: str = "auto", epochs: int = 1000, batch_size: int = 16, lr: float = 1e-4, holdout: int = 20,
          size: str = "gradtts", net: Optional[dict] = None, diffusion: Optional[dict] = None, frontend: str = "auto",
          progress: bool = True, seed: int = 0, resume: bool = False, **train_kwargs) -> TTS:
    """Train a Grad-TTS voice on an LJ Speech-style folder (or a list of ``Utterance``).

    The last ``holdout`` utterances are kept out (validation loss; evaluation). ``size`` picks a
    :data:`PRESETS` network; ``net`` / ``diffusion`` override :class:`GradTTSConfig` / :class:`DiffusionConfig` fields; other keywords go to
    :class:`TrainConfig`. With ``out`` the core writes ``out/last`` (resumable) and the voice is saved
    to ``out/final``. Grad-TTS: Adam lr 1e-4, batch 16, 1.7 M iterations on LJ Speech.
    """
    from ...datasets.ljspeech import locate_ljspeech, read_metadata, split_holdout

    items = list(data) if not isinstance(data, (str, Path)) else read_metadata(locate_ljspeech(data))
    train_items, val_items = split_holdout(items, holdout)
    fe, mel_cfg = TextFrontend(frontend), MelConfig()
    diff_cfg = DiffusionConfig(**(diffusion or {}))
    if size not in PRESETS:
        raise ValueError(f"size must be one of {', '.join(PRESETS)}, got {size!r}")
    netcfg = GradTTSConfig(n_vocab=fe.n_symbols, n_feats=mel_cfg.n_mels, **{**PRESETS[size], **(net or {})})
    model = TTS(GradTTSNet(netcfg), fe, mel_cfg, diff_cfg, device=device)
    train_pairs, val_pairs = prepare(train_items, fe, mel_cfg), prepare(val_items, fe, mel_cfg)
    cfg = TrainConfig(epochs=epochs, lr=lr, max_steps=max_steps, device=str(model.device), seed=seed,
                      progress=progress, **{"lr_schedule": "constant", "ema_decay": _ema_decay(max_steps),
                                             **train_kwargs})
    loss = lambda m, b: gradtts_loss(m, b, diff_cfg)
    result: TrainResult = fit(model.net, loss, _loader(train_pairs, batch_size, True, seed), cfg,
                              val_batches=_loader(val_pairs, batch_size, False, seed) if val_pairs else None,
                              checkpoint_dir=Path(out) if out else None, resume=resume,
                              extra_config={"kind": "gradtts-train", "net": netcfg.to_dict()})
    model.net.eval()
    model.history = result.history
    if out:
        model.save(Path(out) / "final")
    return model


@dataclass
class EvalResult:
    rows: list[dict] = field(default_factory=list)  # one row per decoder setting, averaged over clips
    examples: dict = field(default_factory=dict)      # first clip: {"ground truth", "prior mu", setting: mel}

    def table(self) -> str:
        keys = ["setting", "mcd", "log_f0_rmse", "f0_clips", "rtf_decoder", "rtf_end_to_end"]
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for r in self.rows:
            lines.append("| " + " | ".join(f"{r[k]:.4f}" if isinstance(r.get(k), float) else str(r.get(k, ""))
                                           for k in keys) + " |")
        return "\n".join(lines)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(model: TTS, items, steps: Sequence[int] = (4, 10, 50), sampler: str = "euler_ode",
             temperature: float = 1.5, with_f0: bool = True, vocoder: Optional[Vocoder] = None,
             seed: int = 0, progress: Optional[Callable[[str], None]] = None) -> EvalResult:
    """MCD-DTW and log-F0 RMSE against the real clips ``items`` (vocoded ground truth is *not* used:
    the reference is the recorded audio), plus real-time factors, for the prior ``mu`` alone
    ("prior") and the diffusion decoder at each of ``steps``. RTF = synthesis time / audio duration,
    decoder only (diffusion sampling) and end to end (text -> waveform, vocoder included)."""
    from ...datasets.ljspeech import load_audio
    from ...metrics.audio import compare_features, speech_features

    if not items:
        raise ValueError("evaluate() needs at least one held-out utterance")
    wavs = [load_audio(u.path, model.sample_rate) for u in items]
    refs = [speech_features(w, model.sample_rate, with_f0=with_f0) for w in wavs]
    settings = [("prior", 0)] + [(f"{sampler}-{n}", n) for n in steps]
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
        row = {"setting": name, "steps": n, "clips": len(items),
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
