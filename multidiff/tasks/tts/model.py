"""The Grad-TTS decoder model on the shifted mel ``y = mel - mu``, with one of two objectives:
the VP-SDE (beta0 = 0.05, beta1 = 20; Grad-TTS) or an OT conditional flow from ``N(0, I)`` to ``y``
(Matcha-TTS, Mehta et al. 2024; Lipman et al. 2023). The loss is ``duration + prior + decoder``
(durations by monotonic alignment search), or the decoder term alone when the encoder is frozen
(:func:`decoder_stage_loss`). :class:`~.api.TTS` samples it through :func:`multidiff.core.samplers.run`
with the voice's ``DiffusionConfig.schedule``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from ...audio.alignment import maximum_path
from ...core import losses
from ...core.schedules import OTFlow, VPSDE
from ...nets.gradtts import GradTTSNet, fit_length, sequence_mask

__all__ = ["DiffusionConfig", "gradtts_loss", "decoder_stage_loss", "alignment", "collate", "collate_aligned",
           "OBJECTIVES"]

OBJECTIVES = {"vp": "continuous", "flow": "flow"}  # objective -> the kind of model the core's samplers see
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class DiffusionConfig:
    """The decoder's diffusion: Grad-TTS' VP-SDE (Popov et al. 2021) or OT flow matching (Matcha-TTS, Mehta et
    al. 2024)."""
    beta0: float = 0.05         # VP-SDE beta(0) (Grad-TTS)
    beta1: float = 20.0         # VP-SDE beta(1) (Grad-TTS)
    segment_frames: int = 172   # random mel segment the decoder trains on (Grad-TTS: 2 s = 172 frames)
    objective: str = "vp"       # "vp": Grad-TTS' VP-SDE, eps loss; "flow": OT-CFM (Matcha-TTS), velocity loss
    sigma_min: float = 1e-4     # flow: the noise left at the data end (Matcha-TTS: 1e-4)
    temperature: float = 1.5    # the voice's default: sampling noise is divided by it (Grad-TTS: 1.5)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {tuple(OBJECTIVES)}, got {self.objective!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0 and finite (sampling noise is divided by it), got "
                             f"{self.temperature!r}")

    @property
    def default_sampler(self) -> str:
        """What a voice samples with unless told: Grad-TTS' Euler ODE steps, or Euler steps of the flow."""
        return "euler" if self.objective == "flow" else "euler_ode"

    @property
    def schedule(self) -> VPSDE | OTFlow:
        """The decoder's schedule object, as :func:`multidiff.core.samplers.run` takes it:
        ``VPSDE(beta0, beta1)``, or ``OTFlow(sigma_min)`` for the flow objective."""
        return OTFlow(self.sigma_min) if self.objective == "flow" else VPSDE(self.beta0, self.beta1)


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


@torch.no_grad()
def alignment(mu_x: torch.Tensor, x_mask: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
    """Monotonic alignment search (Glow-TTS, as Grad-TTS trains): the most likely monotonic path of
    tokens to frames under ``N(y_j; mu_i, I)``, ``(batch, tokens, frames)`` of 0/1."""
    return maximum_path(_log_prior(y.float(), mu_x.float()), x_mask.transpose(1, 2) * y_mask.unsqueeze(1))


def _random_segments(y_len: torch.Tensor, size: int, generator=None) -> torch.Tensor:
    room = (y_len - size).clamp(min=0).float()
    return (torch.rand(len(y_len), generator=generator, device=y_len.device) * (room + 1)).floor().long()


def _decoder_loss(net, y_seg, mu_seg, seg_mask, diffusion: DiffusionConfig) -> torch.Tensor:
    """The decoder's term on mel segments: eps MSE (VP-SDE) or flow matching on ``y - mu``."""
    model = lambda y_t, tt: net.denoise(y_t, seg_mask, mu_seg, tt)
    mask = seg_mask.unsqueeze(1).expand_as(y_seg)
    if diffusion.objective == "flow":
        t = torch.rand(len(y_seg), device=y_seg.device)
        return losses.flow_mse(model, y_seg - mu_seg, t, diffusion.schedule, mask=mask)
    t = losses.draw_continuous_t(len(y_seg), device=y_seg.device, t_min=1e-5, t_max=1 - 1e-5)
    return losses.eps_mse(model, y_seg - mu_seg, t, diffusion.schedule.alpha_bar_of, mask=mask)


def _crop(y: torch.Tensor, mu_y: torch.Tensor, y_len: torch.Tensor, size: int):
    """Random ``size``-frame crops of the mels and their aligned means, and the crops' valid-frame mask."""
    start = _random_segments(y_len, size)
    idx = (start.unsqueeze(1) + torch.arange(size, device=y.device)).clamp(max=y.shape[-1] - 1)
    take = lambda a: torch.gather(a, -1, idx.unsqueeze(1).expand(-1, a.shape[1], -1))
    seg_mask = (start.unsqueeze(1) + torch.arange(size, device=y.device) < y_len.unsqueeze(1)).to(y.dtype)
    return take(y) * seg_mask.unsqueeze(1), take(mu_y) * seg_mask.unsqueeze(1), seg_mask


def collate_aligned(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad ``(log_mel, aligned mu)`` pairs (both ``(n_feats, frames)``) into a batch dict."""
    y_len = torch.tensor([m.shape[-1] for m, _ in items])
    mels = torch.zeros(len(items), items[0][0].shape[0], int(y_len.max()))
    mus = torch.zeros_like(mels)
    for i, (m, mu) in enumerate(items):
        mels[i, :, : m.shape[-1]], mus[i, :, : m.shape[-1]] = m, mu
    return {"mels": mels, "mus": mus, "y_lengths": y_len}


def decoder_stage_loss(net: GradTTSNet, batch: dict, diffusion: DiffusionConfig = DiffusionConfig()) -> torch.Tensor:
    """The decoder's loss alone on a :func:`collate_aligned` batch: the means were aligned once by a
    trained, frozen encoder (Grad-TTS' prior converges first; training in stages spends the rest of
    the budget on the decoder, with no encoder pass and no alignment search per step)."""
    y, mu_y, y_len = batch["mels"], batch["mus"], batch["y_lengths"]
    size = fit_length(min(diffusion.segment_frames, int(y_len.max())), net.n_down)
    y_seg, mu_seg, seg_mask = _crop(y, mu_y, y_len, size)
    return _decoder_loss(net, y_seg, mu_seg, seg_mask, diffusion)


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
    attn = alignment(mu_x, x_mask, y, y_mask)
    logw_target = torch.log(1e-8 + attn.sum(-1, keepdim=True).transpose(1, 2)) * x_mask
    dur_loss = ((logw - logw_target) ** 2).sum() / x_len.sum()
    mu_y = torch.einsum("bfi,bij->bfj", mu_x, attn.to(mu_x.dtype))
    n_feats = y.shape[1]
    prior_loss = (0.5 * ((y - mu_y) ** 2 + _LOG_2PI) * y_mask.unsqueeze(1)).sum() / (y_mask.sum() * n_feats)

    size = fit_length(min(diffusion.segment_frames, int(y_len.max())), net.n_down)
    y_seg, mu_seg, seg_mask = _crop(y, mu_y, y_len, size)
    diff_loss = _decoder_loss(net, y_seg, mu_seg, seg_mask, diffusion)
    if parts is not None:
        parts.update(duration=float(dur_loss.detach()), prior=float(prior_loss.detach()),
                     diffusion=float(diff_loss.detach()))
    return dur_loss + prior_loss + diff_loss
