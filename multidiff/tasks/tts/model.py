"""The Grad-TTS decoder model: the VP-SDE (beta0 = 0.05, beta1 = 20) on the shifted mel
``y = mel - mu``, the loss ``duration + prior + diffusion`` (durations by monotonic alignment
search). :class:`~.api.TTS` samples it through :func:`multidiff.core.samplers.run` with
``sde=DiffusionConfig.sde``: Grad-TTS' uniform grid from t = 1 to 0 for every sampler."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from ...audio.alignment import maximum_path
from ...core import losses, samplers
from ...core.deprecation import renamed_attribute
from ...core.schedules import VPSDE, vp_alpha_bar
from ...nets.gradtts import GradTTSNet, fit_length, sequence_mask

__all__ = ["DiffusionConfig", "gradtts_loss", "collate", "SAMPLERS"]

SAMPLERS = samplers.names("continuous")  # the core's methods for a VP-SDE model (the registry decides)
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class DiffusionConfig:
    beta0: float = 0.05         # VP-SDE beta(0) (Grad-TTS)
    beta1: float = 20.0         # VP-SDE beta(1) (Grad-TTS)
    segment_frames: int = 172   # random mel segment the decoder trains on (Grad-TTS: 2 s = 172 frames)

    def alpha_bar_of(self, t: torch.Tensor) -> torch.Tensor:
        """Signal level of the decoder's VP-SDE at times ``t``."""
        return vp_alpha_bar(t, self.beta0, self.beta1)

    alpha_bar = renamed_attribute("alpha_bar_of")  # the old name, deprecated

    @property
    def sde(self) -> VPSDE:
        """The decoder's VP-SDE, as :func:`multidiff.core.samplers.run` takes it."""
        return VPSDE(self.beta0, self.beta1)


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
    diff_loss = losses.eps_mse(model, y_seg - mu_seg, t, diffusion.alpha_bar_of,
                               mask=seg_mask.unsqueeze(1).expand_as(y_seg))
    if parts is not None:
        parts.update(duration=float(dur_loss.detach()), prior=float(prior_loss.detach()),
                     diffusion=float(diff_loss.detach()))
    return dur_loss + prior_loss + diff_loss
