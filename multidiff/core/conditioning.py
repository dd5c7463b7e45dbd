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

__all__ = ["conditional_input", "replace_known", "repeat_samples", "interpolate_masked", "pchip_masked"]


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


def pchip_masked(values: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Shape-preserving piecewise cubic Hermite interpolation (PCHIP, Fritsch & Carlson 1980)
    along the last axis through the entries where ``mask`` is 1: at a known entry the slope is
    the weighted harmonic mean of the two neighbouring secants (0 where they differ in sign, the
    one secant at either end), as ``scipy.interpolate.PchipInterpolator`` but for its end slopes.
    Before the first and after the last known entry the nearest value is held; rows with no
    known entry get ``fill``. Batched over leading axes."""
    known = mask.bool()
    n = values.shape[-1]
    pos = torch.arange(n, device=values.device).expand_as(values)
    none_before, none_after = torch.full_like(pos, -1), torch.full_like(pos, n)
    prev = torch.where(known, pos, none_before).cummax(dim=-1).values
    nxt = torch.where(known, pos, none_after).flip(-1).cummin(dim=-1).values.flip(-1)
    # the known entries before and after each position, itself excluded
    prev_x = torch.cat([none_before[..., :1], prev[..., :-1]], dim=-1)
    next_x = torch.cat([nxt[..., 1:], none_after[..., :1]], dim=-1)
    at = lambda idx: values.gather(-1, idx.clamp(0, n - 1))  # noqa: E731
    h_left = (pos - prev_x).to(values.dtype)
    h_right = (next_x - pos).to(values.dtype)
    has_left, has_right = prev_x >= 0, next_x < n
    d_left = torch.where(has_left, (values - at(prev_x)) / h_left.clamp(min=1), 0.0)
    d_right = torch.where(has_right, (at(next_x) - values) / h_right.clamp(min=1), 0.0)
    w1, w2 = 2 * h_right + h_left, h_right + 2 * h_left
    same_sign = (d_left * d_right) > 0
    harmonic = (w1 + w2) / (w1 / torch.where(same_sign, d_left, 1.0) + w2 / torch.where(same_sign, d_right, 1.0))
    slope = torch.where(has_left & has_right, torch.where(same_sign, harmonic, 0.0),
                        torch.where(has_left, d_left, d_right))
    y0, y1, d0, d1 = at(prev), at(nxt), slope.gather(-1, prev.clamp(0, n - 1)), slope.gather(-1, nxt.clamp(0, n - 1))
    h = (nxt - prev).clamp(min=1).to(values.dtype)
    s = (pos - prev).to(values.dtype) / h
    cubic = ((2 * s ** 3 - 3 * s ** 2 + 1) * y0 + (s ** 3 - 2 * s ** 2 + s) * h * d0
             + (-2 * s ** 3 + 3 * s ** 2) * y1 + (s ** 3 - s ** 2) * h * d1)
    has_prev, has_next = prev >= 0, nxt < n
    out = torch.where(has_prev & has_next, cubic, torch.where(has_prev, y0, torch.where(has_next, y1, fill)))
    return torch.where(known, values, out)
