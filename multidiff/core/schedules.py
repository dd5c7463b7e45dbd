"""Noise schedules as pure functions.

Discrete schedules return a 1-D float64 tensor of ``beta_t`` for ``t = 0..T-1``;
:func:`alpha_bars` turns betas into the cumulative products used by the samplers.
The continuous VP-SDE (Song et al. 2021) is given by ``beta(t) = beta0 + t (beta1 - beta0)``
on ``t in [0, 1]``; :func:`vp_alpha_bar` is its closed-form signal level. :class:`OTFlow` is the
flow-matching path (Lipman et al. 2023), whose models predict a velocity instead of the noise.

A model holds one schedule object per family, as a diffusers scheduler owns its tables:
:class:`DiscreteSchedule` (a table of ``num_train_steps`` steps), :class:`VPSDE` or :class:`OTFlow`.
Each gives ``to_config()`` (plain JSON, which a checkpoint records) and :func:`schedule_from_config`
rebuilds it; :func:`multidiff.core.samplers.run` takes any of them as ``schedule=``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar, Optional, Union

import torch

from .validate import check_whole

__all__ = [
    "linear_betas", "quad_betas", "cosine_betas", "make_betas", "alpha_bars",
    "vp_beta", "vp_alpha_bar", "vp_discrete_betas", "DiscreteSchedule", "VPSDE", "OTFlow", "Schedule",
    "schedule_from_config", "recorded_schedule",
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


class _Recorded:
    """``to_config()`` / ``from_config()`` of a frozen schedule dataclass: its fields as plain JSON,
    tagged with its ``family``."""

    family: ClassVar[str]

    def to_config(self) -> dict:
        """The schedule as plain JSON (``{"family": ..., field: value, ...}``), as a checkpoint records it."""
        cfg = {"family": self.family}
        for f in fields(self):
            if f.init:
                value = getattr(self, f.name)
                cfg[f.name] = list(value) if isinstance(value, tuple) else value
        return cfg

    @classmethod
    def from_config(cls, cfg: dict):
        """Inverse of :meth:`to_config`; ``ValueError`` for a config of another family or unknown fields."""
        if not isinstance(cfg, dict) or cfg.get("family") != cls.family:
            family = cfg.get("family") if isinstance(cfg, dict) else type(cfg).__name__
            raise ValueError(f"a {cls.__name__} config has family {cls.family!r}, got {family!r}")
        names = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(cfg) - names - {"family"})
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; it has {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k != "family"})


_DTYPES = {"float64": torch.float64, "float32": torch.float32}
_KINDS = ("linear", "quad", "cosine", "table")


@dataclass(frozen=True)
class DiscreteSchedule(_Recorded):
    """A discrete DDPM schedule (Ho et al. 2020): the model takes step indices ``t`` in
    ``0..num_train_steps-1`` and the schedule owns the tables, as a diffusers scheduler does.

    Built by name (``kind`` ``"linear"``, ``"quad"`` (CSDI) or ``"cosine"``, with ``beta_start`` and
    ``beta_end``, through :func:`make_betas`), or from an explicit table with :meth:`from_betas` /
    :meth:`from_alpha_bars` (kind ``"table"``: e.g. the VP-SDE discretised by :func:`vp_discrete_betas`).
    ``alpha_bars`` are kept in ``dtype``: float64, or float32 for the models that always kept theirs
    so (CSDI's), whose samples depend on it in the last digit.
    """

    family: ClassVar[str] = "discrete"

    kind: str = "linear"                  # "linear", "quad", "cosine" or "table"
    num_train_steps: int = 1000           # T: the table's length
    beta_start: Optional[float] = 1e-4    # beta of step 0 (linear, quad; None for cosine and table)
    beta_end: Optional[float] = 0.02      # beta of step T-1
    dtype: str = "float64"                # precision of alpha_bars
    table: Optional[tuple] = field(default=None, repr=False)  # kind "table": the alpha_bars themselves
    _alpha_bars: torch.Tensor = field(init=False, repr=False, compare=False)
    _betas: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"unknown schedule {self.kind!r}; choose one of linear, quad, cosine (or a table: "
                             "DiscreteSchedule.from_betas / from_alpha_bars)")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {tuple(_DTYPES)}, got {self.dtype!r}")
        check_whole(_STEPS, self.num_train_steps)
        if self.kind == "table":
            if self.table is None or len(self.table) != self.num_train_steps:
                raise ValueError("a table schedule needs its alpha_bars (table=) of num_train_steps entries")
            ab = torch.tensor(self.table, dtype=torch.float64)
            if not (torch.isfinite(ab).all() and (ab > 0).all() and (ab < 1).all() and (ab[1:] < ab[:-1]).all()):
                raise ValueError("alpha_bars must decrease strictly inside (0, 1)")
            betas = 1 - ab / torch.cat([ab.new_ones(1), ab[:-1]])
        else:
            if self.table is not None:
                raise ValueError(f"a {self.kind} schedule is built by name; table= is for kind 'table'")
            if self.kind == "cosine":
                object.__setattr__(self, "beta_start", None)
                object.__setattr__(self, "beta_end", None)
            betas = make_betas(self.kind, self.num_train_steps, self.beta_start, self.beta_end)
            ab = alpha_bars(betas)
        object.__setattr__(self, "_betas", betas)
        object.__setattr__(self, "_alpha_bars", ab.to(_DTYPES[self.dtype]))

    @classmethod
    def from_alpha_bars(cls, alpha_bars: torch.Tensor, dtype: str = "float64") -> "DiscreteSchedule":
        """The schedule of an explicit alpha-bar table (1-D, decreasing in (0, 1))."""
        ab = torch.as_tensor(alpha_bars).detach().to("cpu", torch.float64).reshape(-1)
        return cls(kind="table", num_train_steps=len(ab), beta_start=None, beta_end=None, dtype=dtype,
                   table=tuple(ab.tolist()))

    @classmethod
    def from_betas(cls, betas: torch.Tensor, dtype: str = "float64") -> "DiscreteSchedule":
        """The schedule of an explicit beta table (e.g. ``vp_discrete_betas(1000)``)."""
        return cls.from_alpha_bars(alpha_bars(torch.as_tensor(betas)), dtype)

    @property
    def betas(self) -> torch.Tensor:
        """``beta_t`` for ``t = 0..T-1`` (float64)."""
        return self._betas

    @property
    def alpha_bars(self) -> torch.Tensor:
        """``alpha_bar_t = prod_{s<=t} (1 - beta_s)`` for ``t = 0..T-1`` (in ``dtype``, on the CPU)."""
        return self._alpha_bars

    def alpha_bar_of(self, t: torch.Tensor) -> torch.Tensor:
        """Signal level at integer steps ``t`` (any shape), on ``t``'s device: the model's ``alpha_bar_of``."""
        return self._alpha_bars.to(t.device)[t.long()]

    def __len__(self) -> int:
        return self.num_train_steps


@dataclass(frozen=True)
class VPSDE(_Recorded):
    """The continuous VP-SDE (Song et al. 2021) a continuous-time model was trained on: the model
    takes times ``t`` in [0, 1], ``beta(t) = beta0 + t (beta1 - beta0)``. Grad-TTS uses (0.05, 20),
    DiffPure (0.1, 20)."""

    family: ClassVar[str] = "vp_sde"

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


@dataclass(frozen=True)
class OTFlow(_Recorded):
    """The optimal-transport conditional flow path (Lipman et al. 2023), the second objective beside
    :class:`VPSDE` (Matcha-TTS, Mehta et al. 2024): ``x_t = (1 - (1 - sigma_min) t) x_0 + t x_1``
    from noise ``x_0`` at ``t = 0`` to data ``x_1`` at ``t = 1``; the model predicts the velocity
    ``u = x_1 - (1 - sigma_min) x_0`` (a velocity model, not an eps model). Its level at ``t`` is
    the signal coefficient ``t`` (1: clean), as a VP model's is ``alpha_bar``."""

    family: ClassVar[str] = "ot_flow"

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


Schedule = Union[DiscreteSchedule, VPSDE, OTFlow]
_FAMILIES = {cls.family: cls for cls in (DiscreteSchedule, VPSDE, OTFlow)}


def schedule_from_config(cfg: dict) -> Schedule:
    """The schedule a ``to_config()`` dict describes (its ``family`` picks the class)."""
    family = cfg.get("family") if isinstance(cfg, dict) else None
    if family not in _FAMILIES:
        raise ValueError(f"a schedule config needs a family among {tuple(_FAMILIES)}, got {family!r}")
    return _FAMILIES[family].from_config(cfg)


def recorded_schedule(config: dict, built: Schedule, what: str = "the checkpoint", key: str = "schedule") -> Schedule:
    """``built`` (the schedule a loader built from a checkpoint's settings), once checked against the
    one its ``config[key]`` records: ``ValueError`` naming ``what`` if they differ. A config
    without it (written before checkpoints recorded their schedule) holds the same information in
    the settings ``built`` came from."""
    if isinstance(config, dict) and key in config:
        recorded = schedule_from_config(config[key])
        if recorded != built:
            raise ValueError(f"{what} records the schedule {recorded} but its settings build {built}; "
                             "the config was edited by hand: save the model again")
        return recorded
    return built
