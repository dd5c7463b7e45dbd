"""Conditioning on observed values, shared by imputation, completion and forecasting.

Two mechanisms: CSDI's conditional input (the network sees the observed values and their
mask; :func:`conditional_input`) and replacement guidance (observed entries are reset after
every sampler step, noised to the current level; RePaint, PVD's fixed partial points;
:func:`replace_known`).
"""
from __future__ import annotations

from typing import Optional

import torch

from .denoiser import add_noise

__all__ = ["conditional_input", "replace_known", "repeat_samples", "interpolate_masked"]


def conditional_input(x_t: torch.Tensor, observed: torch.Tensor, cond_mask: torch.Tensor) -> torch.Tensor:
    """CSDI's network input (Tashiro et al. 2021): stack observed values and the noisy targets
    along a new channel axis 1, each zeroed where it does not apply."""
    cond_mask = cond_mask.to(x_t.dtype)
    return torch.stack([observed * cond_mask, x_t * (1 - cond_mask)], dim=1)


def replace_known(known: torch.Tensor, mask: torch.Tensor, noise_known: bool = True,
                  generator: Optional[torch.Generator] = None):
    """Sampler hook that holds ``known`` where ``mask`` is 1.

    With ``noise_known`` the known values are forward-noised to the level the sampler is at
    (RePaint, Lugmayr et al. 2022); without, they are kept clean (PVD completion).
    """
    mask = mask.to(known.dtype)

    def project(x: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        if noise_known and ab < 1:
            eps = torch.randn(known.shape, generator=generator, device=known.device, dtype=known.dtype)
            target = add_noise(known, eps, ab.to(known.dtype))
        else:
            target = known
        return mask * target + (1 - mask) * x

    return project


def repeat_samples(t: torch.Tensor, n: int) -> torch.Tensor:
    """Stack ``n`` copies along the batch axis (sample-major), so all samples run in one call."""
    return t.repeat((n,) + (1,) * (t.dim() - 1))


def interpolate_masked(values: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Linear interpolation along the last axis between the entries where ``mask`` is 1; before
    the first and after the last known entry the nearest known value is held (as pandas'
    ``interpolate(limit_direction="both")``), and rows with no known entry get ``fill``.

    PriSTI (Liu et al. 2023) feeds these interpolated observations to the denoiser as its
    conditional input; imputation also diffuses the residual over them. Batched over leading axes.
    """
    known = mask.bool()
    n = values.shape[-1]
    pos = torch.arange(n, device=values.device).expand_as(values)
    big = torch.full_like(pos, n)
    prev = torch.where(known, pos, -1).cummax(dim=-1).values            # last known index at or before t
    nxt = torch.where(known, pos, big).flip(-1).cummin(dim=-1).values.flip(-1)  # first known at or after t
    has_prev, has_next = prev >= 0, nxt < n
    v_prev = values.gather(-1, prev.clamp(min=0))
    v_next = values.gather(-1, nxt.clamp(max=n - 1))
    span = (nxt - prev).clamp(min=1).to(values.dtype)
    w = ((pos - prev).to(values.dtype) / span)
    both = v_prev + w * (v_next - v_prev)
    out = torch.where(has_prev & has_next, both, torch.where(has_prev, v_prev, torch.where(has_next, v_next, fill)))
    return torch.where(known, values, out)
