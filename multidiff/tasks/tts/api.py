"""Text to speech with a Grad-TTS diffusion decoder (Popov et al., ICML 2021).

The encoder predicts a per-token mean mel ``mu`` and log durations; in training, monotonic alignment
search (:mod:`multidiff.audio.alignment`) expands ``mu`` to frames. The decoder is the core's VP-SDE
(beta0 = 0.05, beta1 = 20) on the shifted mel ``y = x - mu``: Grad-TTS' forward SDE
``dx = 0.5 (mu - x) beta dt + sqrt(beta) dW`` is exactly the VP-SDE of ``y``, so ``y_t = sqrt(ab) y_0 +
sqrt(1 - ab) eps`` and the U-Net is trained with the eps loss. Sampling starts at
``y_1 = eps / temperature`` (Grad-TTS' convention: noise is *divided* by the temperature, so
temperature > 1 is less noisy; Grad-TTS uses 1.5) and runs :func:`multidiff.core.samplers.run` on
Grad-TTS' grid (``sampler_steps`` equal steps from t = 1 to 0): ``euler_ode`` (the default: Grad-TTS'
Euler steps ``beta(t) h`` of the probability-flow ODE at the step mid-points), ``euler_sde`` (its
stochastic reverse-SDE sampler), ``dpm_solver`` (DPM-Solver++(2M)), or any other method the core
registers for a VP-SDE. Loss = duration + prior + diffusion, as Grad-TTS.

A voice may instead carry a flow-matching decoder (``DiffusionConfig(objective="flow")``, Matcha-TTS,
Mehta et al. 2024): Matcha's 1-D U-Net (``GradTTSConfig(decoder="unet1d")``) predicts the velocity of
the OT path from ``N(0, I) / temperature`` to ``y`` and samples with the core's flow steps
(``"euler"``, the default, or ``"midpoint"``). ``train(data, init=voice, stage="decoder")`` trains
such a decoder on a trained voice's frozen encoder (training in stages).

    model = train("LJSpeech-1.1", out="ckpt", max_steps=2000)
    wav, sr = load("ckpt").synthesize("Printing, in the only sense.", sampler_steps=10)

The loss is in :mod:`.model`, the benchmark protocol in :mod:`.evaluate`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...audio.alignment import durations_to_path
from ...audio.mel import MelConfig, mel_spectrogram
from ...audio.text import TextFrontend
from ...audio.vocoder import GriffinLim, Vocoder
from ...core import samplers
from ...core.checkpoint import load_checkpoint, register_kind, save_checkpoint
from ...core.device import resolve_device
from ...core.schedules import recorded_schedule
from ...core.task import register_task
from ...core.training import Batches, TrainConfig, TrainResult, fit, global_rank, resolve_train_config
from ...core.validate import check_whole
from ...nets.gradtts import GradTTSConfig, GradTTSNet, fit_length, sequence_mask
from .model import DiffusionConfig, alignment, collate, collate_aligned, decoder_stage_loss, gradtts_loss

__all__ = ["PRESETS", "TRAINING_PRESETS", "CPU_TRAIN_CONFIG", "DEFAULT_VOICE", "TTS", "prepare", "train", "load",
           "preset_settings", "DEFAULT_TRAIN_CONFIG"]

# How a voice trains unless told otherwise: Grad-TTS' constant lr 1e-4 (AdamW, weight decay 1e-6),
# clipping at norm 1, EMA 0.999 capped for short runs so that it averages over at most a tenth of
# max_steps (decay <= 1 - 10 / max_steps: an EMA without bias correction would keep a short run near
# its initial weights), 1000 epochs. train(..., train_config=...) replaces it; the keywords epochs,
# lr and max_steps default to its values.
DEFAULT_TRAIN_CONFIG = TrainConfig(epochs=1000, lr=1e-4, weight_decay=1e-6, lr_schedule="constant", ema_decay=0.999,
                                   ema_min_windows=10, grad_clip=1.0)
_D = DEFAULT_TRAIN_CONFIG

# network sizes: "gradtts" is the paper's (14.8 M parameters); the others fit CPU budgets. "cpu" (2.4 M)
# spends the parameters where intelligibility comes from: the encoder (its mu carries the phonemes and
# MAS aligns on it; 128 wide, 4 layers) is 4x tiny's width x depth, the decoder keeps tiny's width but
# gets a third resolution (receptive field over 80 bins x 64 frames) for little compute, since at 16
# channels most of its cost is the full-resolution level.
PRESETS = {
    "gradtts": {},
    "small": dict(enc_channels=96, enc_filter=384, enc_layers=4, dp_filter=128, dec_dim=32, dec_attn_dim=16),
    "cpu": dict(enc_channels=128, enc_filter=384, enc_layers=4, dp_filter=128, dec_dim=16, dec_mults=(1, 2, 4),
                dec_attn_dim=16),
    "tiny": dict(enc_channels=64, enc_filter=128, enc_layers=2, dp_filter=64, dec_dim=16, dec_mults=(1, 2),
                 dec_attn_dim=8),
}

# Training on a few CPU cores for hours, not GPUs for days (issue 14): lr 1e-3 (10x Grad-TTS', which is
# tuned for 1.7 M steps; ours are a few thousand) after 300 warm-up steps (the encoder is a post-norm
# transformer, which diverges without one at that lr), kept constant so that a run can be resumed and
# extended and each learning-curve point is a model one could ship; EMA 0.995 (an average over ~200
# steps), capped for short runs as the default's.
CPU_TRAIN_CONFIG = replace(DEFAULT_TRAIN_CONFIG, lr=1e-3, warmup_steps=300, ema_decay=0.995, epochs=100_000)

# What `--preset NAME` sets on the command line (`multidiff tts train`, benchmarks/tts_ljspeech.py);
# flags given explicitly win. "cpu": the network above, batch 16 (MAS loops over frames once per batch,
# so bigger batches amortise it), 64-frame decoder crops (0.74 s: the decoder learns local spectral
# detail, and its cost is linear in the crop), CPU_TRAIN_CONFIG.
TRAINING_PRESETS = {
    "cpu": dict(size="cpu", batch_size=16, segment_frames=64, train_config=CPU_TRAIN_CONFIG),
}



def preset_settings(preset: Optional[str] = None, size: Optional[str] = None, batch_size: Optional[int] = None,
                    segment_frames: Optional[int] = None, lr: Optional[float] = None,
                    warmup_steps: Optional[int] = None, epochs: Optional[int] = None,
                    max_minutes: Optional[float] = None) -> dict:
    """Keywords of :func:`train` (``size``, ``batch_size``, ``diffusion``, ``train_config``) for a
    :data:`TRAINING_PRESETS` entry (None: train()'s own defaults), the other arguments winning where
    given (not None); ``max_minutes`` is a training-time budget (``TrainConfig.max_time``)."""
    if preset is not None and preset not in TRAINING_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(TRAINING_PRESETS)} or None, got {preset!r}")
    base = TRAINING_PRESETS.get(preset, {})
    check_whole("batch_size", batch_size, none="the preset's")  # 0 is not "the preset's": it used to mean 16
    check_whole("segment_frames", segment_frames, none="the preset's")
    if max_minutes is not None:
        _check_positive("max_minutes", max_minutes, "a training-time budget in minutes")
    given = {"lr": lr, "warmup_steps": warmup_steps, "epochs": epochs,
             "max_time": None if max_minutes is None else 60.0 * max_minutes}
    cfg = replace(base.get("train_config", DEFAULT_TRAIN_CONFIG), **{k: v for k, v in given.items() if v is not None})
    cfg.validate()
    pick = lambda value, key, default: value if value is not None else base.get(key, default)
    return {"size": size or base.get("size", "gradtts"), "batch_size": pick(batch_size, "batch_size", 16),
            "diffusion": {"segment_frames": pick(segment_frames, "segment_frames", DiffusionConfig.segment_frames)},
            "train_config": cfg}


# The voice shipped with the package (a TTS checkpoint folder: weights.safetensors, config.json, and
# voice.json saying how it was trained); `load()` without a folder reads it.
DEFAULT_VOICE = Path(__file__).resolve().parent / "pretrained"
register_kind("tts", "multidiff.tasks.tts.load(DIR) (command line: multidiff tts synthesize --checkpoint DIR)")


def _check_positive(name: str, value, what: str) -> float:
    """``value`` as a float when it is a finite number > 0; otherwise ``ValueError`` saying so (NaN and
    inf included: ``nan <= 0`` is False, so a bare comparison lets them through)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be > 0 and finite ({what}), got {value!r}")
    return float(value)


class TTS:
    """A trained Grad-TTS voice: text -> mel (diffusion decoder) -> waveform (``vocoder``).

    ``vocoder`` is any ``log_mel -> waveform`` callable (:mod:`multidiff.audio.vocoder`); Griffin-Lim by default.
    The task contract (:mod:`multidiff.core.task`): :meth:`build` a voice, :meth:`fit` it on utterances,
    ``sample`` (:meth:`synthesize_mels`), :meth:`save` / :meth:`load`, ``kind``, :meth:`default_train_config`.
    """

    kind = "tts"  # the checkpoint kind save() writes and load() reads

    def __init__(self, net: GradTTSNet, frontend: TextFrontend, mel: MelConfig = MelConfig(),
                 diffusion: DiffusionConfig = DiffusionConfig(), vocoder: Optional[Vocoder] = None,
                 device: str | torch.device = "auto"):
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.frontend, self.mel, self.diffusion = frontend, mel, diffusion
        self.vocoder = vocoder if vocoder is not None else GriffinLim(mel)
        self.history: list[dict] = []
        self.trained: dict = {}  # fit(): {"steps", "seconds" (training time, summed over resumes), "stopped_by"}

    @property
    def sample_rate(self) -> int:
        """Samples per second of the waveforms (the mel settings')."""
        return self.mel.sample_rate

    @torch.no_grad()
    def prior(self, texts: Sequence[str], length_scale: float = 1.0):
        """Encoder output for ``texts``: ``(mu_y (batch, n_feats, frames), y_mask (batch, frames), lengths)``."""
        if isinstance(texts, str):
            raise TypeError("prior() takes a list of texts; use synthesize_mel() for one string")
        if not texts:
            raise ValueError("no texts given (an empty list); pass at least one sentence, e.g. ['Hello there.']")
        _check_positive("length_scale", length_scale, "durations are multiplied by it; 1 is the trained pace")
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
    def decode(self, mu_y: torch.Tensor, y_mask: torch.Tensor, sampler_steps: int = 10,
               temperature: Optional[float] = None, sampler: Optional[str] = None, seed: Optional[int] = 0) -> torch.Tensor:
        """Diffusion decoder: aligned means -> mels ``(batch, n_feats, frames)`` (padding zeroed).

        Starts from ``N(0, I) / temperature`` (None: the voice's ``DiffusionConfig.temperature``) around
        ``mu_y`` and runs ``sampler`` (None: the voice's
        :attr:`DiffusionConfig.default_sampler`) for ``sampler_steps`` steps on the core's grid of the
        voice's objective (the VP-SDE from t = 1 to 0, or the flow from 0 to 1), padding held at zero."""
        temperature = self.diffusion.temperature if temperature is None else temperature
        _check_positive("temperature", temperature, "noise is divided by it")
        gen = torch.Generator(device=mu_y.device)
        if seed is None:
            gen.seed()  # fresh entropy, without touching the global RNG
        else:
            gen.manual_seed(seed)
        mask = y_mask.unsqueeze(1)
        model = lambda y_t, t: self.net.denoise(y_t, y_mask, mu_y, t.to(mu_y.dtype))
        y0 = samplers.run(model, sampler=sampler or self.diffusion.default_sampler, sampler_steps=sampler_steps,
                          schedule=self.diffusion.schedule, shape=mu_y.shape, dtype=mu_y.dtype,
                          device=mu_y.device, temperature=temperature,
                          generator=gen, project=lambda y, ab: y * mask)  # Grad-TTS masks after every step
        return (y0 + mu_y) * mask

    def synthesize_mels(self, texts: Sequence[str], sampler_steps: int = 10, temperature: Optional[float] = None,
                        sampler: Optional[str] = None, length_scale: float = 1.0, seed: Optional[int] = 0,
                        return_prior: bool = False):
        """One batched decoder run for several texts -> list of ``(n_feats, frames)`` mels (and priors)."""
        if isinstance(texts, str):
            raise TypeError("synthesize_mels() takes a list of texts; use synthesize_mel() for one string")
        if temperature is not None:
            _check_positive("temperature", temperature, "noise is divided by it")  # before the encoder runs
        mu_y, y_mask, y_len = self.prior(list(texts), length_scale)
        mels = self.decode(mu_y, y_mask, sampler_steps, temperature, sampler, seed)
        out = [m[:, :n].cpu() for m, n in zip(mels, y_len.tolist())]
        return (out, [m[:, :n].cpu() for m, n in zip(mu_y, y_len.tolist())]) if return_prior else out

    def synthesize_mel(self, text: str, sampler_steps: int = 10, temperature: Optional[float] = None,
                       sampler: Optional[str] = None,
                       length_scale: float = 1.0, seed: Optional[int] = 0) -> torch.Tensor:
        """Log-mel ``(n_feats, frames)`` of ``text`` (HiFi-GAN convention), for any vocoder."""
        return self.synthesize_mels([text], sampler_steps, temperature, sampler, length_scale, seed)[0]

    def vocode(self, mel: torch.Tensor, vocoder: Optional[Vocoder] = None) -> np.ndarray:
        """A waveform (NumPy, float32) of the log-mel ``mel`` by ``vocoder``, or by the voice's own (Griffin-Lim
        unless given)."""
        wav = (vocoder or self.vocoder)(mel.to(self.device))
        return wav.detach().float().cpu().numpy()

    def synthesize(self, text: str, sampler_steps: int = 10, temperature: Optional[float] = None,
                   sampler: Optional[str] = None,
                   length_scale: float = 1.0, seed: Optional[int] = 0,
                   vocoder: Optional[Vocoder] = None) -> tuple[np.ndarray, int]:
        """``(waveform float32 (samples,), sample_rate)`` for ``text``."""
        mel = self.synthesize_mel(text, sampler_steps, temperature, sampler, length_scale, seed)
        return self.vocode(mel, vocoder), self.sample_rate

    sample = synthesize_mels  # the task contract's draw (multidiff.core.task)

    # -- training ----------------------------------------------------------------------------------
    @classmethod
    def default_train_config(cls) -> TrainConfig:
        """:data:`DEFAULT_TRAIN_CONFIG`: what :meth:`fit` trains with unless ``train_config=`` replaces it."""
        return DEFAULT_TRAIN_CONFIG

    @classmethod
    def build(cls, size: str = "gradtts", net: Optional[dict] = None, diffusion: Optional[dict] = None,
              frontend: str = "auto", init: Optional[str | Path] = None, seed: int = 0,
              device: str | torch.device = "auto") -> "TTS":
        """A voice to :meth:`fit`: the :data:`PRESETS` network ``size`` (``net`` / ``diffusion`` override
        :class:`GradTTSConfig` / :class:`DiffusionConfig` fields) with the text ``frontend``, its initial
        weights fixed by ``seed`` (the caller's random generators untouched). ``init`` starts from a
        saved voice instead (a folder, or ``"shipped"`` for :data:`DEFAULT_VOICE`): its frontend, mel
        settings and weights, ``net`` / ``diffusion`` overriding its settings (a decoder of another kind
        or size starts fresh)."""
        base = None if init is None else cls.load(None if str(init) == "shipped" else init, device="cpu")
        if base is None:
            fe, mel_cfg = TextFrontend(frontend), MelConfig()
            diff_cfg = DiffusionConfig(**(diffusion or {}))
            if size not in PRESETS:
                raise ValueError(f"size must be one of {', '.join(PRESETS)}, got {size!r}")
            netcfg = GradTTSConfig(n_vocab=fe.n_symbols, n_feats=mel_cfg.n_mels, **{**PRESETS[size], **(net or {})})
        else:
            fe, mel_cfg = base.frontend, base.mel
            diff_cfg = replace(base.diffusion, **(diffusion or {}))
            netcfg = replace(base.net.cfg, **(net or {}))
        with torch.random.fork_rng(devices=[]):  # `seed` fixes the initial weights; the caller's RNG stays as it was
            torch.default_generator.manual_seed(seed)
            network = GradTTSNet(netcfg)
        if base is not None:
            _load_matching(network, base.net)
        return cls(network, fe, mel_cfg, diff_cfg, device=device)

    def fit(self, data: str | Path | Sequence, out: Optional[str | Path] = None,
            max_steps: Optional[int] = _D.max_steps, epochs: int = _D.epochs, batch_size: int = 16, lr: float = _D.lr,
            holdout: int = 20, progress: bool = True, seed: int = 0, resume: bool = False,
            train_config: Optional[TrainConfig] = None, on_epoch_end: Optional[Callable[["TTS", dict], None]] = None,
            stage: str = "all") -> "TTS":
        """Train this voice on an LJ Speech-style folder (or a list of ``Utterance``); returns it.

        The last ``holdout`` utterances are kept out (validation loss; evaluation). Training settings:
        ``train_config`` (None: :data:`DEFAULT_TRAIN_CONFIG`); ``max_steps``, ``epochs`` and ``lr``
        replace its fields when set to other values than their defaults (those of
        :data:`DEFAULT_TRAIN_CONFIG`), ``seed`` (batch order), ``progress`` and the voice's device always
        do. With ``out`` the core writes ``out/last`` (resumable: a run killed and resumed with
        ``resume=True`` ends bit-identical to one left alone) and the voice is saved to ``out/final``.
        ``on_epoch_end(voice, info)`` gets a :class:`TTS` with the EMA weights after every epoch
        (``info``: the epoch's losses, ``steps``, ``seconds`` of training so far; its own time is not
        counted), e.g. to write a learning curve. ``stage="decoder"`` trains the decoder alone on the
        frozen encoder's means, aligned once (training in stages: the prior converges first).
        """
        if stage not in ("all", "decoder"):
            raise ValueError(f"stage must be 'all' or 'decoder', got {stage!r}")
        from ...datasets.ljspeech import locate_ljspeech, read_metadata, split_holdout

        items = list(data) if not isinstance(data, (str, Path)) else read_metadata(locate_ljspeech(data))
        train_items, val_items = split_holdout(items, holdout)
        fe, mel_cfg, diff_cfg = self.frontend, self.mel, self.diffusion
        train_pairs, val_pairs = prepare(train_items, fe, mel_cfg), prepare(val_items, fe, mel_cfg)
        loss = lambda m, b: gradtts_loss(m, b, diff_cfg)
        if stage == "decoder":
            for part in (self.net.encoder, self.net.duration):
                part.requires_grad_(False)
            train_pairs, val_pairs = align(self.net, train_pairs), align(self.net, val_pairs)
            loss = lambda m, b: decoder_stage_loss(m, b, diff_cfg)
        cfg = resolve_train_config(DEFAULT_TRAIN_CONFIG, train_config,
                                   {"epochs": epochs, "lr": lr, "max_steps": max_steps},
                                   {"device": str(self.device), "seed": seed, "progress": progress})
        callback = None
        if on_epoch_end is not None:
            callback = lambda net, info: on_epoch_end(TTS(net, fe, mel_cfg, diff_cfg, device=self.device), info)
        gather = collate_aligned if stage == "decoder" else collate
        val_batches = _batches(val_pairs, batch_size, False, seed, gather) if val_pairs else None
        result: TrainResult = fit(self.net, loss, _batches(train_pairs, batch_size, True, seed, gather), cfg,
                                  val_batches=val_batches,
                                  checkpoint_dir=Path(out) if out else None, resume=resume,
                                  extra_config={"net": self.net.cfg.to_dict()}, on_epoch_end=callback)
        self.net.eval()
        self.history = result.history
        self.trained = {"steps": result.optimizer_steps, "seconds": result.seconds, "stopped_by": result.stopped_by}
        if out and global_rank() == 0:  # data-parallel training: every process holds the voice, one writes it
            self.save(Path(out) / "final")
        return self

    # -- persistence -------------------------------------------------------------------------------
    def config(self) -> dict:
        """The settings a checkpoint records: network, text frontend, mel, diffusion, training history."""
        return {"net": self.net.cfg.to_dict(), "frontend": self.frontend.config(),
                "mel": self.mel.to_dict(), "diffusion": self.diffusion.__dict__,
                "schedule": self.diffusion.schedule.to_config(), "history": self.history, "trained": self.trained}

    def save(self, directory: str | Path) -> Path:
        """Atomic safetensors + JSON checkpoint (core.checkpoint)."""
        return save_checkpoint(directory, {"model": self.net.state_dict()}, self.config(), kind=self.kind)

    @classmethod
    def load(cls, directory: Optional[str | Path] = None, device: str | torch.device = "auto",
             vocoder: Optional[Vocoder] = None) -> "TTS":
        """A voice saved by :meth:`save` or :func:`train` (``out/final``); None: the voice shipped with the package."""
        if directory is None:
            return cls.load(_shipped_voice(), device, vocoder)
        directory = Path(directory)
        if not directory.exists():
            raise FileNotFoundError(f"no checkpoint at {directory}; train one with `multidiff tts train --out "
                                    f"{directory}` or tts.train(..., out=...)")
        if not (directory / "config.json").is_file() and (directory / "final" / "config.json").is_file():
            directory = directory / "final"
        states, cfg = load_checkpoint(directory, kind=cls.kind, max_kind_version=1)
        net = GradTTSNet(GradTTSConfig.from_dict(cfg["net"]))
        net.load_state_dict(states["model"])
        frontend = TextFrontend(**cfg["frontend"])
        mel = MelConfig(**cfg["mel"])
        diffusion = DiffusionConfig(**cfg["diffusion"])
        recorded_schedule(cfg, diffusion.schedule, f"checkpoint {directory}")  # the shipped voice's: in "diffusion"
        model = cls(net, frontend, mel, diffusion, vocoder, device)
        model.history, model.trained = cfg["history"], cfg["trained"]
        return model


register_task(TTS)


def load(directory: Optional[str | Path] = None, device: str | torch.device = "auto",
         vocoder: Optional[Vocoder] = None) -> TTS:
    """Load a voice saved by :meth:`TTS.save` or :func:`train` (``out/final``); without ``directory``,
    the voice shipped with the package (:data:`DEFAULT_VOICE`)."""
    return TTS.load(directory, device, vocoder)


def _shipped_voice() -> Path:
    """:data:`DEFAULT_VOICE` (looked up when called, so tests and users can point it elsewhere) if it holds a voice."""
    from ...core.checkpoint import CONFIG, WEIGHTS

    folder = Path(DEFAULT_VOICE)
    if not ((folder / WEIGHTS).is_file() and (folder / CONFIG).is_file()):
        raise FileNotFoundError(
            f"no voice is shipped with this install ({folder} holds no {WEIGHTS} + {CONFIG}), so give a trained "
            "checkpoint. Train one on 2 CPU cores in about 3 hours: python benchmarks/tts_ljspeech.py --preset cpu "
            "--max-minutes 180 --export-voice multidiff/tasks/tts/pretrained (or multidiff tts train --preset cpu "
            "--out ckpt, then --checkpoint ckpt)")
    return folder


def prepare(items, frontend: TextFrontend, mel: MelConfig) -> list[tuple[list[int], torch.Tensor]]:
    """``(token ids, log-mel)`` for LJ Speech utterances (see :mod:`multidiff.datasets.ljspeech`)."""
    from ...datasets.ljspeech import load_audio

    out = []
    for u in items:
        wav = torch.from_numpy(load_audio(u.path, mel.sample_rate))
        out.append((frontend.encode(u.text), mel_spectrogram(wav, mel)))
    return out


def _batches(pairs, batch_size: int, shuffle: bool, seed: int, gather=collate) -> Batches:
    """Collated batches of ``(token ids, log-mel)`` pairs (or ``gather``'s); a shuffled pass drops its short last batch."""
    return Batches(len(pairs), batch_size, lambda idx: gather([pairs[i] for i in idx.tolist()]), shuffle=shuffle,
                   generator=torch.Generator().manual_seed(seed), drop_last=shuffle)


def _load_matching(net: GradTTSNet, source: GradTTSNet) -> None:
    """Copy ``source``'s encoder and duration predictor into ``net``, and its decoder when of the same shape."""
    net.encoder.load_state_dict(source.encoder.state_dict())
    net.duration.load_state_dict(source.duration.state_dict())
    mine, theirs = net.decoder.state_dict(), source.decoder.state_dict()
    if mine.keys() == theirs.keys() and all(mine[k].shape == theirs[k].shape for k in mine):
        net.decoder.load_state_dict(theirs)


@torch.no_grad()
def align(net: GradTTSNet, pairs, batch_size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(log_mel, aligned mu)`` for ``(token ids, log_mel)`` pairs: the encoder's means expanded to
    the frames by monotonic alignment search (Grad-TTS' training alignment), the encoder in eval mode."""
    was_training, out = net.training, []
    net.eval()
    device = next(net.parameters()).device
    for i in range(0, len(pairs), batch_size):
        b = collate(pairs[i: i + batch_size])
        tokens, x_len, y, y_len = (b[k].to(device) for k in ("tokens", "x_lengths", "mels", "y_lengths"))
        mu_x, _, x_mask = net.encode(tokens, x_len)
        y_mask = sequence_mask(y_len, y.shape[-1]).to(mu_x.dtype)
        attn = alignment(mu_x, x_mask, y, y_mask)
        mu_y = torch.einsum("bfi,bij->bfj", mu_x, attn.to(mu_x.dtype))
        out += [(m[:, :n].cpu(), mu[:, :n].cpu()) for m, mu, n in zip(y, mu_y, y_len.tolist())]
    net.train(was_training)
    return out


def train(data: str | Path | Sequence, out: Optional[str | Path] = None, max_steps: Optional[int] = _D.max_steps,
          device: str = "auto", epochs: int = _D.epochs, batch_size: int = 16, lr: float = _D.lr, holdout: int = 20,
          size: str = "gradtts", net: Optional[dict] = None, diffusion: Optional[dict] = None, frontend: str = "auto",
          progress: bool = True, seed: int = 0, resume: bool = False, train_config: Optional[TrainConfig] = None,
          on_epoch_end: Optional[Callable[["TTS", dict], None]] = None, init: Optional[str | Path] = None,
          stage: str = "all") -> TTS:
    """Train a Grad-TTS voice on an LJ Speech-style folder (or a list of ``Utterance``):
    ``TTS.build(size, net, diffusion, frontend, init, seed, device).fit(data, ...)`` (:meth:`TTS.build`
    sets up the voice, :meth:`TTS.fit` trains it; the other arguments are :meth:`TTS.fit`'s).

    ``stage="decoder"`` needs ``init`` (a trained voice whose frozen encoder the decoder learns from).
    Grad-TTS: Adam lr 1e-4, batch 16, 1.7 M iterations on LJ Speech; :data:`TRAINING_PRESETS` holds a CPU setting.
    """
    if stage == "decoder" and init is None:
        raise ValueError("stage='decoder' trains a decoder on a trained encoder: give init= (a voice folder, or "
                         "'shipped')")
    return TTS.build(size, net, diffusion, frontend, init, seed, device).fit(
        data, out, max_steps, epochs, batch_size, lr, holdout, progress, seed, resume, train_config, on_epoch_end, stage)
