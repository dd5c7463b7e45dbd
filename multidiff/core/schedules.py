"""Noise schedules as pure functions.

Discrete schedules return a 1-D float64 tensor of ``beta_t`` for ``t = 0..T-1``;
:func:`alpha_bars` turns betas into the cumulative products used by the samplers.
The continuous VP-SDE (Song et al. 2021) is given by ``beta(t) = beta0 + t (beta1 - beta0)``
on ``t in [0, 1]``; :func:`vp_alpha_bar` is its closed-form signal level. :class:`OTFlow` is the
flow-matching path (Lipman et al. 2023), whose models predict a velocity instead of the noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .deprecation import renamed_attribute
from .validate import check_whole

__all__ = [
    "linear_betas", "quad_betas", "cosine_betas", "make_betas", "alpha_bars",
    "vp_beta", "vp_alpha_bar", "vp_discrete_betas", "VPSDE", "OTFlow",
]


_STEPS = "the number of schedule steps"


def _check(n: int, start: float, end: float) -> None:
    check_whole(_STEPS, n)
    if not (0.0 < start <= end < 1.0):
        raise ValueError(f"betas must satisfy 0 < start <= end < 1, got start={start}, end={end}")


def linear_betas(n: int, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """Linearly spaced betas (Ho et al. 2020; TimeGrad uses 1e-4..0.1, PVD 1e-4..0.02)."""
    _check(n, start, end)
    return torch.linspace(start, end, n, dtype=torch.float64)


def quad_betas(n: int, start: float = 1e-4, end: float = 0.5) -> torch.Tensor:
    """Betas whose square roots are linearly spaced: CSDI's ``quad`` schedule (Tashiro et al. 2021)."""
    _check(n, start, end)
    return torch.linspace(start ** 0.5, end ** 0.5, n, dtype=torch.float64) ** 2


def cosine_betas(n: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021): alpha_bar(t) = cos^2((t/T + s)/(1 + s) * pi/2)."""
    check_whole(_STEPS, n)
    t = torch.arange(n + 1, dtype=torch.float64) / n
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def make_betas(kind: str, n: int, start: float | None = None, end: float | None = None) -> torch.Tensor:
    """Betas by name: ``"linear"``, ``"quad"`` or ``"cosine"`` (start/end ignored for cosine)."""
    if kind == "cosine":
        return cosine_betas(n)
    table = {"linear": linear_betas, "quad": quad_betas}
    if kind not in table:
        raise ValueError(f"unknown schedule {kind!r}; choose one of linear, quad, cosine")
    kwargs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    return table[kind](n, **kwargs)


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """Cumulative signal level ``alpha_bar_t = prod_{s<=t} (1 - beta_s)``; strictly decreasing in (0, 1)."""
    return torch.cumprod(1.0 - betas.to(torch.float64), dim=0)


def vp_beta(t: torch.Tensor | float, beta0: float = 0.1, beta1: float = 20.0) -> torch.Tensor:
    """Instantaneous noise rate of the VP-SDE, ``beta(t) = beta0 + t (beta1 - beta0)``."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return beta0 + t * (beta1 - beta0)


def vp_alpha_bar(t: torch.Tensor | float, beta0: float = 0.1, beta1: float = 20.0) -> torch.Tensor:
    """Signal level of the VP-SDE: ``exp(-int_0^t beta(s) ds)``, so ``x_t = sqrt(ab) x_0 + sqrt(1-ab) eps``."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return torch.exp(-(beta0 * t + 0.5 * (beta1 - beta0) * t ** 2))


def vp_discrete_betas(n: int, beta0: float = 0.1, beta1: float = 20.0) -> torch.Tensor:
    """Discretise the VP-SDE into ``n`` DDPM betas whose alpha_bars match ``vp_alpha_bar`` at t = (i+1)/n."""
    ab = vp_alpha_bar(torch.arange(1, n + 1, dtype=torch.float64) / n, beta0, beta1)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    return 1 - ab / prev


@dataclass(frozen=True)
class VPSDE:
    """The continuous VP-SDE (Song et al. 2021) a continuous-time model was trained on: the model
    takes times ``t`` in [0, 1], ``beta(t) = beta0 + t (beta1 - beta0)``. Grad-TTS uses (0.05, 20),
    DiffPure (0.1, 20)."""

    beta0: float = 0.1   # noise rate at t = 0
    beta1: float = 20.0  # noise rate at t = 1

    def __post_init__(self):
        if not (math.isfinite(self.beta0) and math.isfinite(self.beta1) and 0 < self.beta0 < self.beta1):
            raise ValueError(f"a VP-SDE needs 0 < beta0 < beta1, got beta0={self.beta0}, beta1={self.beta1}")

    def beta(self, t: torch.Tensor | float) -> torch.Tensor:
        """Instantaneous noise rate ``beta(t)`` (float64)."""
        return vp_beta(t, self.beta0, self.beta1)

    def alpha_bar_of(self, t: torch.Tensor | float) -> torch.Tensor:
        """Signal level ``exp(-int_0^t beta)`` (float64): the model's ``alpha_bar_of``."""
        return vp_alpha_bar(t, self.beta0, self.beta1)

    alpha_bar = renamed_attribute("alpha_bar_of")  # the old name, deprecated


@dataclass(frozen=True)
class OTFlow:
    """The optimal-transport conditional flow path (Lipman et al. 2023), the second objective beside
    :class:`VPSDE` (Matcha-TTS, Mehta et al. 2024): ``x_t = (1 - (1 - sigma_min) t) x_0 + t x_1``
    from noise ``x_0`` at ``t = 0`` to data ``x_1`` at ``t = 1``; the model predicts the velocity
    ``u = x_1 - (1 - sigma_min) x_0`` (a velocity model, not an eps model). Its level at ``t`` is
    the signal coefficient ``t`` (1: clean), as a VP model's is ``alpha_bar``."""

    sigma_min: float = 1e-4  # noise left at t = 1 (Lipman et al.; Matcha-TTS)

    def __post_init__(self):
        if not (math.isfinite(self.sigma_min) and 0 <= self.sigma_min < 1):
            raise ValueError(f"an OT flow needs 0 <= sigma_min < 1, got sigma_min={self.sigma_min}")

    def path(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t`` between noise ``x0`` and data ``x1`` at times ``t`` (one per batch row)."""
        t = t.to(x1.dtype).reshape(t.shape + (1,) * (x1.dim() - t.dim()))
        return (1 - (1 - self.sigma_min) * t) * x0 + t * x1

    def velocity(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The path's velocity ``d x_t / dt``: the model's training target."""
        return x1 - (1 - self.sigma_min) * x0
