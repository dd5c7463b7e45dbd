"""Stateless samplers over the eps contract of :mod:`multidiff.core.denoiser`.

Every sampler walks a :class:`Grid` of decreasing noise levels and ends at the clean
level ``alpha_bar = 1``. A grid made by :func:`discrete_grid` strides a DDPM schedule
(fewer steps, or a partial start at ``t*`` for purification); :func:`vp_grid` samples the
continuous VP-SDE. All samples of a batch go through the network in one call per step.

``project(x, ab)`` is an optional hook run after every step with the level ``x`` is now at;
:func:`multidiff.core.conditioning.replace_known` uses it to hold observed values fixed
(RePaint / PVD-style guidance). ``generator`` makes stochastic samplers reproducible;
``randn(like)``, when given, replaces it as the source of every noise draw (EDM's injectable
``randn_like``), e.g. :func:`rowwise_randn` for noise that does not depend on batch composition.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from .denoiser import Denoiser, x0_from_eps
from .validate import check_whole

Project = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Randn = Callable[[torch.Tensor], torch.Tensor]  # like -> standard normal noise of like's shape, dtype, device

__all__ = ["Grid", "discrete_grid", "vp_grid", "ddim", "ddpm", "dpm_solver_pp_2m",
           "euler_ode", "euler_sde", "sample", "SAMPLERS", "Randn", "rowwise_randn"]


@dataclass(frozen=True)
class Grid:
    """Sampling times (what the model is called with, decreasing) and their signal levels."""

    times: torch.Tensor  # (n,) model time arguments, noisiest first
    alpha_bars: torch.Tensor  # (n,) float64 signal levels at those times, increasing

    def __post_init__(self):
        if self.times.shape != self.alpha_bars.shape or self.times.dim() != 1 or len(self.times) == 0:
            raise ValueError("a grid needs 1-D times and alpha_bars of equal, non-zero length")

    def __len__(self) -> int:
        return len(self.times)

    def next_level(self, i: int) -> torch.Tensor:
        return self.alpha_bars[i + 1] if i + 1 < len(self) else torch.ones((), dtype=torch.float64)


def discrete_grid(alpha_bars: torch.Tensor, n_steps: int, t_start: Optional[int] = None,
                  spacing: str = "uniform") -> Grid:
    """Step indices from ``t_start`` (default the last step) down to 0.

    ``spacing="uniform"`` strides the indices evenly (``n_steps == len(alpha_bars)`` gives the full
    DDPM chain); ``"logsnr"`` spaces them evenly in log signal-to-noise ratio, which few-step
    solvers prefer (Lu et al. 2022).
    """
    total = len(alpha_bars)
    t_start = total - 1 if t_start is None else int(t_start)
    if not 0 <= t_start < total:
        raise ValueError(f"t_start must lie in [0, {total - 1}], got {t_start}")
    n_steps = check_whole("n_steps", n_steps)
    ab = alpha_bars.to(torch.float64)
    n = min(n_steps, t_start + 1)
    if spacing == "uniform":
        steps = torch.linspace(t_start, 0, n, dtype=torch.float64).round().long()
    elif spacing == "logsnr":
        lam = 0.5 * (ab.log() - torch.log1p(-ab))  # decreasing in t
        targets = torch.linspace(float(lam[t_start]), float(lam[0]), n, dtype=torch.float64)
        steps = torch.searchsorted(-lam[: t_start + 1].contiguous(), -targets).clamp(0, t_start)
    else:
        raise ValueError(f"spacing must be 'uniform' or 'logsnr', got {spacing!r}")
    steps = torch.unique(steps).flip(0)
    return Grid(times=steps, alpha_bars=ab[steps])


def vp_grid(n_steps: int, alpha_bar_fn: Callable[[torch.Tensor], torch.Tensor],
            t_start: float = 1.0, t_end: float = 1e-3) -> Grid:
    """Uniform continuous times from ``t_start`` to ``t_end`` for a VP-SDE with ``alpha_bar_fn(t)``."""
    if not 0 < t_end < t_start <= 1:
        raise ValueError(f"need 0 < t_end < t_start <= 1, got t_start={t_start}, t_end={t_end}")
    times = torch.linspace(t_start, t_end, check_whole("n_steps", n_steps), dtype=torch.float64)
    return Grid(times=times, alpha_bars=alpha_bar_fn(times).to(torch.float64))


def _call(model: Denoiser, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    times = t.to(x.device).expand(x.shape[0])
    return model(x, times if times.is_floating_point() else times.long())


def _noise(x: torch.Tensor, generator: Optional[torch.Generator], randn: Optional[Randn] = None) -> torch.Tensor:
    if randn is not None:
        return randn(x)
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def rowwise_randn(generators: Sequence[torch.Generator], n_samples: int) -> Randn:
    """A ``randn`` for a sample-major batch of ``n_samples * len(generators)`` rows (row
    ``s * B + b`` is sample ``s`` of item ``b``, as :func:`~multidiff.core.conditioning.repeat_samples`
    lays it out) in which the noise of item ``b`` comes from ``generators[b]`` alone.

    Each call draws ``(n_samples, *like.shape[1:])`` from every generator, so an item's noise
    stream is the same whichever other items share its batch: chunking a job into calls of any
    size gives the same samples (per-item generators as EDM's ``StackedRandomGenerator``).
    """
    generators = list(generators)

    def randn(like: torch.Tensor) -> torch.Tensor:
        if like.shape[0] != n_samples * len(generators):
            raise ValueError(f"rowwise_randn was built for {n_samples} samples x {len(generators)} items = "
                             f"{n_samples * len(generators)} rows, got a batch of {like.shape[0]}")
        shape = (n_samples, *like.shape[1:])
        noise = torch.stack([torch.randn(shape, generator=g, device=g.device, dtype=like.dtype)
                             for g in generators], dim=1)  # (S, B, ...): sample-major
        return noise.reshape(like.shape).to(like.device)

    return randn


def ddim(model: Denoiser, x: torch.Tensor, grid: Grid, eta: float = 0.0,
         generator: Optional[torch.Generator] = None, project: Optional[Project] = None,
         randn: Optional[Randn] = None) -> torch.Tensor:
    """DDIM (Song, Meng & Ermon 2021). ``eta = 0`` is deterministic, ``eta = 1`` is DDPM ancestral."""
    for i in range(len(grid)):
        ab, ab_next = grid.alpha_bars[i], grid.next_level(i)
        eps = _call(model, x, grid.times[i])
        x0 = x0_from_eps(x, eps, ab)
        sigma = eta * ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)).clamp(min=0).sqrt()
        x = ab_next.sqrt() * x0 + (1 - ab_next - sigma ** 2).clamp(min=0).sqrt() * eps
        if eta > 0 and i + 1 < len(grid):
            x = x + sigma * _noise(x, generator, randn)
        x = x.to(eps.dtype)
        if project is not None:
            x = project(x, ab_next)
    return x


def ddpm(model: Denoiser, x: torch.Tensor, grid: Grid, generator: Optional[torch.Generator] = None,
         project: Optional[Project] = None, randn: Optional[Randn] = None) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020) with posterior variance beta-tilde; over a full
    discrete grid this is exactly CSDI's and TimeGrad's sampler."""
    return ddim(model, x, grid, eta=1.0, generator=generator, project=project, randn=randn)


def dpm_solver_pp_2m(model: Denoiser, x: torch.Tensor, grid: Grid, generator: Optional[torch.Generator] = None,
                     project: Optional[Project] = None, randn: Optional[Randn] = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-SNR, data prediction.

    The history is a local variable; the last step lands on the data prediction (sigma = 0).
    Deterministic: ``generator`` and ``randn`` are accepted for a uniform signature and unused.
    """
    x0_prev, h_prev = None, None
    lam = lambda ab: 0.5 * (torch.log(ab) - torch.log1p(-ab))  # log(alpha / sigma)
    for i in range(len(grid)):
        ab, ab_next = grid.alpha_bars[i], grid.next_level(i)
        eps = _call(model, x, grid.times[i])
        x0 = x0_from_eps(x, eps, ab)
        if ab_next >= 1:
            x = x0
        else:
            h = lam(ab_next) - lam(ab)
            d = x0 if x0_prev is None else (1 + h / (2 * h_prev)) * x0 - h / (2 * h_prev) * x0_prev
            sigma, sigma_next = (1 - ab).sqrt(), (1 - ab_next).sqrt()
            x = (sigma_next / sigma) * x - ab_next.sqrt() * torch.expm1(-h) * d
            x0_prev, h_prev = x0, h
        x = x.to(eps.dtype)
        if project is not None:
            x = project(x, ab_next)
    return x


def _euler(model: Denoiser, x: torch.Tensor, grid: Grid, stochastic: bool,
           generator: Optional[torch.Generator], project: Optional[Project],
           randn: Optional[Randn] = None) -> torch.Tensor:
    for i in range(len(grid)):
        ab, ab_next = grid.alpha_bars[i], grid.next_level(i)
        eps = _call(model, x, grid.times[i])
        score = -eps / (1 - ab).sqrt()
        beta_dt = torch.log(ab_next) - torch.log(ab)  # integral of beta(t) over the step
        if stochastic:
            x = x + beta_dt * (0.5 * x + score)
            if i + 1 < len(grid):
                x = x + beta_dt.sqrt() * _noise(x, generator, randn)
        else:
            x = x + 0.5 * beta_dt * (x + score)
        x = x.to(eps.dtype)
        if project is not None:
            x = project(x, ab_next)
    return x


def euler_ode(model: Denoiser, x: torch.Tensor, grid: Grid, generator: Optional[torch.Generator] = None,
              project: Optional[Project] = None, randn: Optional[Randn] = None) -> torch.Tensor:
    """Euler steps of the VP probability-flow ODE (Song et al. 2021), as Grad-TTS samples."""
    return _euler(model, x, grid, False, generator, project, randn)


def euler_sde(model: Denoiser, x: torch.Tensor, grid: Grid, generator: Optional[torch.Generator] = None,
              project: Optional[Project] = None, randn: Optional[Randn] = None) -> torch.Tensor:
    """Euler-Maruyama steps of the reverse VP-SDE (Song et al. 2021), as DiffPure purifies."""
    return _euler(model, x, grid, True, generator, project, randn)


SAMPLERS = {
    "ddpm": ddpm,
    "ddim": ddim,
    "dpm_solver": dpm_solver_pp_2m,
    "euler_ode": euler_ode,
    "euler_sde": euler_sde,
}


def sample(method: str, model: Denoiser, x: torch.Tensor, grid: Grid, **kwargs) -> torch.Tensor:
    """Run the sampler named ``method`` (one of :data:`SAMPLERS`)."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[method](model, x, grid, **kwargs)
