"""Stateless samplers over the eps contract of :mod:`multidiff.core.denoiser`, and :func:`run`,
the one entry point through which every task samples.

Three layers, as k-diffusion splits ``get_sigmas_*`` from ``sample_*``:

- **Grids** (:class:`Grid`): the decreasing noise levels a sampler walks, ending at the clean level
  ``alpha_bar = 1``. :func:`discrete_grid` strides a model's alpha-bar table (uniform or log-SNR
  spacing, partial start at a step index); :func:`continuous_grid` is the one grid of a
  continuous-time (VP-SDE) model: uniform times from ``t_start`` down to 0, as Grad-TTS steps.
  :func:`make_grid` picks one from the model's schedule object
  (:class:`~multidiff.core.schedules.DiscreteSchedule`, :class:`~multidiff.core.schedules.VPSDE` or
  :class:`~multidiff.core.schedules.OTFlow`).
- **Samplers** ``fn(model, x, grid, generator=None, project=None, randn=None) -> x``: DDPM, DDIM,
  DPM-Solver++(2M), and Grad-TTS' Euler steps of the probability-flow ODE and of the reverse SDE;
  for a flow-matching model (:class:`~multidiff.core.schedules.OTFlow`, a velocity model: the
  objective of Lipman et al. 2023 beside the VP-SDE), Euler and mid-point steps from noise at
  ``t = 0`` to data at ``t = 1`` (:func:`flow_grid`).
  All samples of a batch go through the network in one call per step.
- **The registry and the entry point**: :data:`METHODS` says which methods exist, whether each
  draws noise, which model times it applies to and its grid spacing on a table; :data:`ALIASES`
  lists the other accepted names. :func:`run` resolves the name, builds the grid, draws the
  initial noise (or forward-noises a clean input to ``t_start``: purification, SDEdit) and
  runs the sampler. Tasks call :func:`run`; none builds a grid or keeps a table of methods.

``project(x, ab)`` is an optional hook run on the starting point and after every step with the
level ``x`` is at; :func:`multidiff.core.conditioning.replace_known` uses it to hold observed
values fixed (RePaint / PVD-style guidance). ``generator`` makes stochastic samplers reproducible;
``randn(like)``, when given, replaces it as the source of every noise draw (EDM's injectable
``randn_like``), e.g. :func:`rowwise_randn` for noise that does not depend on batch composition.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from .denoiser import Denoiser, add_noise, x0_from_eps
from .schedules import DiscreteSchedule, OTFlow, Schedule, VPSDE
from .validate import check_whole

Project = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Randn = Callable[[torch.Tensor], torch.Tensor]  # like -> standard normal noise of like's shape, dtype, device

__all__ = ["Grid", "discrete_grid", "continuous_grid", "flow_grid", "make_grid", "ddim", "ddpm",
           "dpm_solver_pp_2m", "euler_ode", "euler_sde", "flow_euler", "flow_midpoint", "sample", "run", "Method", "METHODS",
           "ALIASES", "resolve", "names", "Randn", "rowwise_randn"]  # the schedules are core.schedules' names


@dataclass(frozen=True)
class Grid:
    """Sampling times (what the model is called with, decreasing) and their signal levels.

    Step ``i`` starts at ``times[i]`` (level ``alpha_bars[i]``) and ends at the next entry, the
    last step at the clean level 1. A continuous-time grid also carries its ``sde``: Euler steps
    need ``beta(t)`` between the grid times, not only the levels at them.
    """

    times: torch.Tensor  # (n,) model time arguments, noisiest first
    alpha_bars: torch.Tensor  # (n,) float64 signal levels at those times, increasing
    sde: Optional[VPSDE] = None  # set on continuous-time grids, whose last step ends at t = 0
    flow: Optional[OTFlow] = None  # set on flow grids: times increase from noise (0) and end at data (t = 1)

    def __post_init__(self):
        if self.times.shape != self.alpha_bars.shape or self.times.dim() != 1 or len(self.times) == 0:
            raise ValueError("a grid needs 1-D times and alpha_bars of equal, non-zero length")

    def __len__(self) -> int:
        return len(self.times)

    def next_level(self, i: int) -> torch.Tensor:
        """The signal level after step ``i``: ``alpha_bars[i + 1]``, or 1 (clean data) after the last step."""
        return self.alpha_bars[i + 1] if i + 1 < len(self) else torch.ones((), dtype=torch.float64)

    def euler_steps(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mid_times, their alpha_bars, beta_h)`` of Grad-TTS' Euler steps (Popov et al. 2021):
        step ``i`` from ``t_i`` to ``t_{i+1}`` (0 after the last) moves by ``beta(m_i) * h`` with
        ``h = t_i - t_{i+1}`` and ``m_i = t_i - h/2`` the mid-point, where Grad-TTS also takes
        the score (``beta`` is linear, so ``beta(m_i) h`` is its exact integral over the step)."""
        if self.sde is None:
            raise ValueError("Euler steps integrate the VP-SDE in time and need a continuous-time grid "
                             "(continuous_grid, or run(..., schedule=VPSDE(...))); a discrete table takes ddpm, ddim "
                             "or dpm_solver")
        t = self.times.to(torch.float64)
        ends = torch.cat([t[1:], t.new_zeros(1)])
        h, mid = t - ends, (t + ends) / 2
        return mid, self.sde.alpha_bar_of(mid), self.sde.beta(mid) * h


def discrete_grid(alpha_bars: torch.Tensor, sampler_steps: int, t_start: Optional[int] = None,
                  spacing: str = "uniform") -> Grid:
    """Step indices from ``t_start`` (default the last step) down to 0.

    ``spacing="uniform"`` strides the indices evenly (``sampler_steps == len(alpha_bars)`` gives the
    full DDPM chain); ``"logsnr"`` spaces them evenly in log signal-to-noise ratio, which few-step
    solvers prefer (Lu et al. 2022). Returns at most ``min(sampler_steps, t_start + 1)`` steps.
    """
    total = len(alpha_bars)
    t_start = total - 1 if t_start is None else int(t_start)
    if not 0 <= t_start < total:
        raise ValueError(f"t_start must lie in [0, {total - 1}], got {t_start}")
    sampler_steps = check_whole("sampler_steps", sampler_steps)
    ab = alpha_bars.to(torch.float64)
    n = min(sampler_steps, t_start + 1)
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


def continuous_grid(sde: VPSDE, sampler_steps: int, t_start: float = 1.0) -> Grid:
    """The grid of a continuous-time model: ``sampler_steps`` steps of equal length ``h = t_start /
    sampler_steps`` from ``t_start`` down to 0 (Grad-TTS, Popov et al. 2021; DiffPure's dt with
    ``t_start = t*``). ``times`` are the step starts ``t_start - i h``; the last step ends at t = 0,
    the clean level, where DDIM and DPM-Solver land on their data prediction."""
    if not 0 < t_start <= 1:
        raise ValueError(f"t_start must lie in (0, 1], got {t_start}")
    n = check_whole("sampler_steps", sampler_steps)
    times = t_start * (1 - torch.arange(n, dtype=torch.float64) / n)
    return Grid(times=times, alpha_bars=sde.alpha_bar_of(times), sde=sde)


def flow_grid(flow: OTFlow, sampler_steps: int, t_start: float = 1.0) -> Grid:
    """The grid of a flow-matching model: ``sampler_steps`` steps of equal length from flow time
    ``1 - t_start`` (``t_start = 1``: from pure noise at 0) to the data at 1. ``times`` are the step
    starts, increasing; their levels are the signal coefficients ``t`` of the OT path."""
    if not 0 < t_start <= 1:
        raise ValueError(f"t_start must lie in (0, 1], got {t_start}")
    n = check_whole("sampler_steps", sampler_steps)
    start = 1.0 - t_start
    times = start + t_start * torch.arange(n, dtype=torch.float64) / n
    return Grid(times=times, alpha_bars=times.clone(), flow=flow)


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
    mid, mid_levels, beta_h = grid.euler_steps()
    # the ODE takes Grad-TTS' score at the mid-point; the SDE takes it where x is, at the step start:
    # at the mid-point x carries twice the noise variance that score assumes, which on the last step
    # flips the remaining noise instead of removing it (seen on one-point data: DiffPure's case)
    times, levels = (grid.times, grid.alpha_bars) if stochastic else (mid, mid_levels)
    for i in range(len(grid)):
        eps = _call(model, x, times[i])
        score = -eps / (1 - levels[i]).sqrt()
        if stochastic:
            x = x + beta_h[i] * (0.5 * x + score)
            if i + 1 < len(grid):  # the last step returns the mean (Song et al. 2021): no noise at t = 0
                x = x + beta_h[i].sqrt() * _noise(x, generator, randn)
        else:
            x = x + 0.5 * beta_h[i] * (x + score)
        x = x.to(eps.dtype)
        if project is not None:
            x = project(x, grid.next_level(i))
    return x


def euler_ode(model: Denoiser, x: torch.Tensor, grid: Grid, generator: Optional[torch.Generator] = None,
              project: Optional[Project] = None, randn: Optional[Randn] = None) -> torch.Tensor:
    """Grad-TTS' sampler (Popov et al. 2021): Euler steps ``x += beta(t) h / 2 (x + score(x, t))``
    of the VP probability-flow ODE (Song et al. 2021), ``t`` the mid-point of each step of a
    :func:`continuous_grid`. Deterministic: ``generator`` and ``randn`` are unused."""
    return _euler(model, x, grid, False, generator, project, randn)


def euler_sde(model: Denoiser, x: torch.Tensor, grid: Grid, generator: Optional[torch.Generator] = None,
              project: Optional[Project] = None, randn: Optional[Randn] = None) -> torch.Tensor:
    """Euler-Maruyama steps ``x += beta h (x / 2 + score(x, t_i)) + sqrt(beta h) z`` of the reverse
    VP-SDE (Song et al. 2021) on the same grid and step sizes ``beta h`` as :func:`euler_ode` (``beta``
    at the step mid-point, the exact integral of the linear ``beta`` over the step), with the score
    taken at the step start ``t_i`` where ``x`` is: the stochastic sampler Grad-TTS reports (which
    takes the score at the mid-point) and DiffPure's purification. The last step adds no noise."""
    return _euler(model, x, grid, True, generator, project, randn)


def _flow_steps(grid: Grid) -> torch.Tensor:
    if grid.flow is None:
        raise ValueError("flow samplers step a velocity model from t = 0 to 1 and need a flow grid "
                         "(flow_grid, or run(..., schedule=OTFlow()))")
    return torch.cat([grid.times[1:], grid.times.new_ones(1)]) - grid.times


def flow_euler(model: Callable, x: torch.Tensor, grid: Grid, generator: Optional[torch.Generator] = None,
               project: Optional[Project] = None, randn: Optional[Randn] = None) -> torch.Tensor:
    """Euler steps ``x += h v(x, t)`` of a flow-matching ODE (Lipman et al. 2023; Matcha-TTS samples
    with them) on a :func:`flow_grid`: one network call per step. Deterministic."""
    h = _flow_steps(grid)
    for i in range(len(grid)):
        v = _call(model, x, grid.times[i])
        x = (x + h[i] * v).to(v.dtype)
        if project is not None:
            x = project(x, grid.next_level(i))
    return x


def flow_midpoint(model: Callable, x: torch.Tensor, grid: Grid, generator: Optional[torch.Generator] = None,
                  project: Optional[Project] = None, randn: Optional[Randn] = None) -> torch.Tensor:
    """Mid-point (second-order Runge-Kutta) steps of a flow-matching ODE on a :func:`flow_grid`:
    ``x += h v(x + h/2 v(x, t), t + h/2)``, two network calls per step. Deterministic."""
    h = _flow_steps(grid)
    for i in range(len(grid)):
        v = _call(model, x, grid.times[i])
        half = (x + 0.5 * h[i] * v).to(v.dtype)
        x = (x + h[i] * _call(model, half, grid.times[i] + 0.5 * h[i])).to(v.dtype)
        if project is not None:
            x = project(x, grid.next_level(i))
    return x


@dataclass(frozen=True)
class Method:
    """A registered sampler: ``fn(model, x, grid, generator=, project=, randn=) -> x``."""

    fn: Callable
    stochastic: bool           # draws noise after the initial one (so its output depends on the generator)
    times: tuple[str, ...]     # the models it applies to: "discrete" (a table), "continuous" (a VP-SDE), "flow" (OTFlow)
    spacing: str               # its grid spacing on a discrete table; continuous grids are always uniform


# Spacing on a table: DDPM strides the chain evenly (the full chain at num_train_steps steps); the
# few-step solvers take log-SNR spacing, measured better for imputation (docs/imputation.md).
METHODS: dict[str, Method] = {
    "ddpm": Method(ddpm, True, ("discrete", "continuous"), "uniform"),
    "ddim": Method(ddim, False, ("discrete", "continuous"), "logsnr"),
    "dpm_solver": Method(dpm_solver_pp_2m, False, ("discrete", "continuous"), "logsnr"),
    "euler_ode": Method(euler_ode, False, ("continuous",), "uniform"),
    "euler_sde": Method(euler_sde, True, ("continuous",), "uniform"),
    "euler": Method(flow_euler, False, ("flow",), "uniform"),
    "midpoint": Method(flow_midpoint, False, ("flow",), "uniform"),
}
ALIASES = {"dpm_solver_pp_2m": "dpm_solver", "sde": "euler_sde"}  # other accepted names -> registered name
_TIMES = ("discrete", "continuous", "flow")


def names(times: Optional[str] = None) -> tuple[str, ...]:
    """Registered method names, in registry order; with ``times`` (``"discrete"``, ``"continuous"``
    or ``"flow"``) only those that apply to a model of that kind."""
    if times is not None and times not in _TIMES:
        raise ValueError(f"times must be 'discrete', 'continuous' or 'flow', got {times!r}")
    return tuple(n for n, m in METHODS.items() if times is None or times in m.times)


def resolve(sampler: str, times: Optional[str] = None) -> str:
    """The registered name of ``sampler`` (aliases resolved). ``ValueError`` naming the choices when
    it is unknown or, with ``times``, does not apply to a model of that kind."""
    name = ALIASES.get(sampler, sampler) if isinstance(sampler, str) else sampler
    if name in METHODS and (times is None or times in METHODS[name].times):
        return name
    choices = names(times)
    if name in METHODS:
        raise ValueError(f"sampler {sampler!r} needs a {METHODS[name].times[0]}-time model; for a {times}-time "
                         f"model the sampler must be one of {choices}")
    aliases = ", ".join(f"{a!r} for {n!r}" for a, n in ALIASES.items() if n in choices)
    raise ValueError(f"unknown sampler {sampler!r}: sampler must be one of {choices}"
                     + (f" (or {aliases})" if aliases else ""))


def sample(sampler: str, model: Denoiser, x: torch.Tensor, grid: Grid, **kwargs) -> torch.Tensor:
    """Run the sampler named ``sampler`` (see :data:`METHODS`, :data:`ALIASES`) on ``grid`` from ``x``."""
    return METHODS[resolve(sampler)].fn(model, x, grid, **kwargs)


def _kind(schedule: Schedule) -> str:
    """The kind of model ``schedule`` belongs to: ``"discrete"``, ``"continuous"`` or ``"flow"``."""
    for cls, kind in ((DiscreteSchedule, "discrete"), (VPSDE, "continuous"), (OTFlow, "flow")):
        if isinstance(schedule, cls):
            return kind
    raise TypeError(f"schedule must be a DiscreteSchedule (a table), a VPSDE or an OTFlow "
                    f"(multidiff.core.schedules), got {type(schedule).__name__}; wrap a bare alpha-bar table "
                    "in DiscreteSchedule.from_alpha_bars(table)")


def _discrete_start(t_start: float, total: int) -> int:
    """Table index of the time fraction ``t_start``: step ``i`` is time ``(i + 1) / total``."""
    return max(0, round(t_start * total) - 1)


def make_grid(sampler: str, sampler_steps: Optional[int] = None, *, schedule: Schedule,
              t_start: float = 1.0) -> Grid:
    """The grid :func:`run` walks for ``sampler`` (registered name or alias) on a model with the
    noise ``schedule``: a :class:`DiscreteSchedule` (the model takes step indices), a
    :class:`VPSDE` (the model takes times in [0, 1]) or an :class:`OTFlow` (times in [0, 1], the
    model predicts a velocity).

    ``t_start`` in (0, 1] is the fraction of the diffusion the run starts from: a time for the
    VP-SDE, step ``round(t_start * T) - 1`` of a table of ``T`` steps. Tables are strided with the
    method's :attr:`Method.spacing`; ``sampler_steps=None`` walks every step of a table from
    ``t_start`` (the full DDPM chain at ``t_start = 1``). A VP-SDE takes :func:`continuous_grid`
    and needs ``sampler_steps``; so does a flow, which takes :func:`flow_grid`.
    """
    name = resolve(sampler, _kind(schedule))
    t_start = float(t_start)
    if not 0 < t_start <= 1:
        raise ValueError(f"t_start must lie in (0, 1] (the fraction of the diffusion to start from), got {t_start}")
    if isinstance(schedule, VPSDE):
        return continuous_grid(schedule, check_whole("sampler_steps", sampler_steps), t_start)
    if isinstance(schedule, OTFlow):
        return flow_grid(schedule, check_whole("sampler_steps", sampler_steps), t_start)
    start = _discrete_start(t_start, len(schedule))
    steps = check_whole("sampler_steps", sampler_steps, none="every step of the table")
    return discrete_grid(schedule.alpha_bars, start + 1 if steps is None else steps, t_start=start,
                         spacing=METHODS[name].spacing)


def run(model: Denoiser, *, sampler: str, sampler_steps: Optional[int] = None, schedule: Schedule,
        shape: Optional[Sequence[int]] = None, x_start: Optional[torch.Tensor] = None, t_start: float = 1.0,
        temperature: float = 1.0, generator: Optional[torch.Generator] = None, randn: Optional[Randn] = None,
        project: Optional[Project] = None, dtype: Optional[torch.dtype] = None,
        device: Optional[torch.device | str] = None) -> torch.Tensor:
    """Sample from the eps-model ``model(x_t, t)``: the one way every task samples.

    The noise ``schedule`` is a :class:`DiscreteSchedule` (``model`` takes step indices), a
    :class:`VPSDE` (``model`` takes float64 times in [0, 1]) or an :class:`OTFlow` (``model(x_t, t)``
    is then a velocity, ``t`` in [0, 1] from noise to data; Lipman et al. 2023). The grid is
    :func:`make_grid`'s.

    Start, one of:

    - ``shape`` (with ``dtype``, ``device``): from noise ``N(0, I) / temperature`` at the top of the
      schedule (Grad-TTS' temperature, Popov et al. 2021: above 1, less noise).
    - ``x_start``: a clean input, forward-noised to the level at ``t_start`` in [0, 1] and denoised
      back (DiffPure, SDEdit). ``t_start = 0`` returns ``x_start`` itself: no noise, no model call.

    Noise (the start and every stochastic step) comes from ``randn(like)`` when given, else from
    ``generator`` (else torch's global generator). ``project(x, ab)`` runs on the start and after
    every step (replacement guidance; :func:`~multidiff.core.conditioning.replace_known`).
    Returns the sample, shaped as the start.
    """
    resolve(sampler, _kind(schedule))
    if (shape is None) == (x_start is None):
        raise ValueError("give shape= (a run from noise) or x_start= (a partial run from t_start), exactly one")
    t_start = float(t_start)
    if x_start is None and t_start != 1.0:
        raise ValueError(f"a run from noise starts at t_start=1, got {t_start}; pass x_start= to start part-way")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be > 0 and finite (the start noise is divided by it), got {temperature!r}")
    if x_start is not None and temperature != 1:
        raise ValueError("temperature scales the noise of a run from noise (shape=); a partial run from x_start "
                         "draws the forward process's own noise")
    if not 0 <= t_start <= 1:
        raise ValueError(f"t_start must lie in [0, 1] (0: return x_start unchanged), got {t_start}")
    if t_start == 0:
        return x_start
    grid = make_grid(sampler, sampler_steps, schedule=schedule, t_start=t_start)
    if x_start is None:
        like = torch.empty(tuple(shape), dtype=dtype or torch.get_default_dtype(), device=device)
        x = _noise(like, generator, randn)
        if temperature != 1:
            x = x * (1 / temperature)
    elif isinstance(schedule, OTFlow):
        x = schedule.path(_noise(x_start, generator, randn), x_start, grid.times[:1].expand(x_start.shape[0]))
    else:
        x = add_noise(x_start, _noise(x_start, generator, randn), grid.alpha_bars[0])
    if project is not None:
        x = project(x, grid.alpha_bars[0])
    return sample(sampler, model, x, grid, generator=generator, project=project, randn=randn)
