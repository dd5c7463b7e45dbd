"""CSDI as a composition of the core: the network of :mod:`multidiff.nets.csdi`, a discrete
schedule, the denoising loss on self-supervised targets, and any core sampler for imputation.

Two choices on top of CSDI (Tashiro et al. 2021), both measured in docs/imputation.md:

- ``base="interpolation"``: the network sees the linearly interpolated observations as its
  conditional input (PriSTI, Liu et al. 2023) and the diffusion runs over the *residual* of the
  targets around that interpolation, so an untrained model starts where interpolation ends.
  ``base=None`` is CSDI's original (observed values as input, values diffused).
- ``prediction="v"`` (Salimans & Ho 2022): the network predicts v instead of eps, which keeps
  few-step samplers (DDIM, DPM-Solver) stable.

Training windows may carry ``context`` extra rows on each side: the interpolation is computed
over the whole padded window (so gaps at a window's edge are bridged as the caller's
series-wide interpolation bridges them at imputation time), the network sees the centre only.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from ...core import samplers
from ...core.conditioning import interpolate_masked, repeat_samples
from ...core.denoiser import as_eps_model, clip_denoised
from ...core.losses import PREDICTIONS, denoising_mse, draw_discrete_t
from ...core.schedules import DiscreteSchedule
from ...nets.csdi import CSDINet
from .masks import training_cond_mask

__all__ = ["CSDIModel", "BASES"]

BASES = ("interpolation", None)


class CSDIModel(nn.Module):
    """Conditional imputation model over (batch, K features, L times) grids, on a discrete
    schedule of ``num_train_steps`` steps (CSDI: 50, quadratic betas)."""

    def __init__(self, n_features: int, num_train_steps: int = 50, schedule: str = "quad", beta_start: float = 1e-4,
                 beta_end: float = 0.5, channels: int = 64, layers: int = 4, heads: int = 8,
                 mask_strategy: str = "mix", prediction: str = "eps", base: Optional[str] = None,
                 context: int = 0):
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if base not in BASES:
            raise ValueError(f"base must be 'interpolation' or None, got {base!r}")
        self.num_train_steps, self.mask_strategy = num_train_steps, mask_strategy  # schedule length; self-supervised masks
        self.prediction, self.base, self.context = prediction, base, int(context)
        self.net = CSDINet(n_features, channels=channels, layers=layers, heads=heads)
        # CSDI's table is float32; the schedule is no buffer: the state dict holds weights only
        self.schedule = DiscreteSchedule(schedule, num_train_steps, beta_start, beta_end, dtype="float32")

    def _net(self, cond_input: torch.Tensor, cond_mask: torch.Tensor, positions: torch.Tensor) -> Callable:
        """The network as ``net(x_t, t)`` (predicting ``self.prediction``) with the conditioning
        closed over; ``cond_input`` is the observed values (CSDI) or their interpolation (PriSTI)."""
        side = self.net.side_info(positions, cond_mask)
        cond_mask = cond_mask.to(cond_input.dtype)

        def net(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.net(torch.stack([cond_input, x_t * (1 - cond_mask)], dim=1), t, side)

        return net

    def _base_and_input(self, values, cond_mask):
        if self.base is None:
            return torch.zeros_like(values), values * cond_mask
        base = interpolate_masked(values, cond_mask)
        return base, base

    def loss(self, batch: dict, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Denoising loss on the observed entries that the drawn mask hides (CSDI's targets)."""
        values, observed = batch["values"], batch["observed"]
        cond = training_cond_mask(observed, self.mask_strategy, generator, batch.get("pattern"))
        base, cond_input = self._base_and_input(values, cond)
        if self.context:
            c = slice(self.context, values.shape[-1] - self.context)
            values, observed, cond, base, cond_input = (a[..., c] for a in (values, observed, cond, base, cond_input))
        t = draw_discrete_t(values.shape[0], self.num_train_steps, values.device, generator)
        net = self._net(cond_input, cond, batch["positions"])
        return denoising_mse(net, values - base, t, self.schedule.alpha_bar_of, self.prediction, mask=observed - cond)

    @torch.no_grad()
    def impute(self, values: torch.Tensor, cond_mask: torch.Tensor, positions: torch.Tensor, n_samples: int,
               sampler: str = "ddpm", sampler_steps: Optional[int] = None,
               generator: Optional[torch.Generator] = None,
               x0_bounds: Optional[tuple[torch.Tensor, torch.Tensor]] = None, base: Optional[torch.Tensor] = None,
               randn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
        """(B, K, L) -> (n_samples, B, K, L) samples; conditioning entries are returned as given.

        All samples of all windows go through the network in one call per step, on the core's grid
        for ``sampler`` (:func:`multidiff.core.samplers.run`; ``sampler_steps=None``: every step).
        ``base`` (B, K, L) is the interpolation the caller computed over the whole series
        (``base="interpolation"`` models; computed per window when omitted). ``x0_bounds`` (low,
        high), broadcastable to (K, L), clamp the implied clean values at every step. ``randn(like)``
        draws the noise (initial and per step; sample-major rows); by default ``generator`` is used."""
        b = values.shape[0]
        cond_mask = cond_mask.to(values.dtype)
        own_base, cond_input = self._base_and_input(values, cond_mask)
        if self.base is not None and base is not None:
            own_base, cond_input = base, base
        obs, cond, pos, base_r, inp = (repeat_samples(v, n_samples) for v in (values, cond_mask, positions,
                                                                             own_base, cond_input))
        model = as_eps_model(self._net(inp, cond, pos), self.prediction, self.schedule.alpha_bar_of)
        if x0_bounds is not None:
            low, high = x0_bounds
            model = clip_denoised(model, self.schedule.alpha_bar_of, low - base_r, high - base_r)
        out = samplers.run(model, sampler=sampler, sampler_steps=sampler_steps, schedule=self.schedule,
                           shape=obs.shape, dtype=obs.dtype, device=obs.device, generator=generator,
                           randn=randn) + base_r
        out = cond * obs + (1 - cond) * out
        return out.reshape(n_samples, b, *values.shape[1:])
