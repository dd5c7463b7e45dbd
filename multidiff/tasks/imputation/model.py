"""CSDI as a composition of the core: the network of :mod:`multidiff.nets.csdi`, a discrete
schedule, the eps loss on self-supervised targets, and any core sampler for imputation."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ...core import samplers
from ...core.conditioning import conditional_input, repeat_samples
from ...core.denoiser import clip_denoised
from ...core.losses import draw_discrete_t, eps_mse
from ...core.schedules import alpha_bars, make_betas
from ...nets.csdi import CSDINet
from .masks import training_cond_mask

__all__ = ["CSDIModel"]


class CSDIModel(nn.Module):
    """Conditional imputation model over (batch, K features, L times) grids."""

    def __init__(self, n_features: int, num_steps: int = 50, schedule: str = "quad", beta_start: float = 1e-4,
                 beta_end: float = 0.5, channels: int = 64, layers: int = 4, heads: int = 8,
                 mask_strategy: str = "mix"):
        super().__init__()
        self.num_steps, self.mask_strategy = num_steps, mask_strategy
        self.net = CSDINet(n_features, channels=channels, layers=layers, heads=heads)
        self.register_buffer("alpha_bars", alpha_bars(make_betas(schedule, num_steps, beta_start, beta_end)).float())

    def denoiser(self, observed: torch.Tensor, cond_mask: torch.Tensor, positions: torch.Tensor):
        """The eps contract ``model(x_t, t)`` with the observed values closed over."""
        side = self.net.side_info(positions, cond_mask)
        return lambda x_t, t: self.net(conditional_input(x_t, observed, cond_mask), t, side)

    def loss(self, batch: dict, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """CSDI training loss: eps-MSE on observed entries that the drawn mask hides."""
        values, observed = batch["values"], batch["observed"]
        cond = training_cond_mask(observed, self.mask_strategy, generator, batch.get("pattern"))
        t = draw_discrete_t(values.shape[0], self.num_steps, values.device, generator)
        ab_of = lambda t: self.alpha_bars[t]
        return eps_mse(self.denoiser(values, cond, batch["positions"]), values, t, ab_of, mask=observed - cond)

    @torch.no_grad()
    def impute(self, values: torch.Tensor, cond_mask: torch.Tensor, positions: torch.Tensor, n_samples: int,
               sampler: str = "ddpm", n_steps: Optional[int] = None, generator: Optional[torch.Generator] = None,
               x0_bounds: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """(B, K, L) -> (n_samples, B, K, L) samples; conditioning entries are returned as given.
        All samples of all windows go through the network in one call per step. ``x0_bounds``
        (low, high), broadcastable to (K, L), clamp the implied clean values at every step."""
        b = values.shape[0]
        obs, cond, pos = (repeat_samples(v, n_samples) for v in (values, cond_mask, positions))
        spacing = "uniform" if sampler == "ddpm" else "logsnr"
        grid = samplers.discrete_grid(self.alpha_bars, n_steps or self.num_steps, spacing=spacing)
        x = torch.randn(obs.shape, generator=generator, device=obs.device, dtype=obs.dtype)
        model = self.denoiser(obs, cond, pos)
        if x0_bounds is not None:
            model = clip_denoised(model, lambda t: self.alpha_bars[t], *x0_bounds)
        out = samplers.sample(sampler, model, x, grid, generator=generator)
        out = cond * obs + (1 - cond) * out
        return out.reshape(n_samples, b, *values.shape[1:])
