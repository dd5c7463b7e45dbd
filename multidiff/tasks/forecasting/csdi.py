"""CSDI forecasting (Tashiro et al., NeurIPS 2021, appendix): forecast by imputing the future.

A window of ``context_length + prediction_length`` steps of all D series is one (D, L) grid; the
conditioning mask covers the observed context, the targets are the horizon, and one sampling
chain draws the whole horizon of all series jointly (non-autoregressive, unlike TimeGrad's one
chain per future step). The network is :class:`multidiff.nets.csdi.CSDINet`, as in the
imputation task; schedule, loss, samplers and the training loop are the core's.

Two choices on top of CSDI, the ones the imputation task measured (docs/imputation.md): the
diffusion runs over the residual around a base forecast, which the network also sees as its
conditional input (PriSTI), and the network predicts v (Salimans & Ho 2022). The base is by
default linear (:mod:`.linear_base`: a ridge per series on its last ``lags`` context values,
DLinear-style, fitted in closed form); ``base="naive"`` keeps the older naive forecast
(:func:`naive_base`): the last observed value held, or the last season repeated when that errs
less on the training windows (:func:`choose_season`). ``max_time=0`` trains nothing and forecasts
the linear base plus whole windows of its leave-one-out residuals. Each window
is standardised per series by the mean and standard deviation of its observed context (GluonTS
estimators also scale per window), so one model serves series of any level.

:class:`CSDIForecastEstimator` ``.train(dataset)`` -> :class:`CSDIForecastPredictor`, whose
``predict`` yields GluonTS ``SampleForecast`` objects with samples (S, H, D), like TimeGrad's.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

with warnings.catch_warnings():  # gluonts.json's import-time advert for orjson / ujson
    warnings.filterwarnings("ignore", message=r"Using `json`-module", category=UserWarning)
    from gluonts.model.forecast import SampleForecast
    from gluonts.model.predictor import Predictor

from ...core import samplers
from ...core.checkpoint import load_checkpoint, load_state_strict, register_kind, save_checkpoint
from ...core.conditioning import interpolate_masked, repeat_samples
from ...core.denoiser import as_eps_model
from ...core.device import resolve_device
from ...core.io import write_json_atomic
from ...core.losses import denoising_mse, draw_discrete_t
from ...core.schedules import DiscreteSchedule, recorded_schedule
from ...core.training import TrainConfig, TrainResult, fit, resolve_train_config
from ...core.validate import check_whole
from ...datasets.gluonts_adapters import check_dataset, period_freq, same_freq, shift_to_level
from ...nets.csdi import CSDINet
from .linear_base import fit_linear_base

__all__ = ["DEFAULT_TRAIN_CONFIG", "calendar_features", "standardise", "step_scale", "naive_base", "choose_season", "CSDIForecastModel", "CSDIForecastEstimator", "CSDIForecastPredictor"]

BASES = ("linear", "naive")  # the base forecast the diffusion runs around
_KIND = "forecasting.csdi"
register_kind(_KIND, "multidiff.tasks.forecasting.CSDIForecastPredictor.deserialize(DIR/..) (the folder that holds "
                     "gluonts-config.json)")
# the imputation task's settings (AdamW 1e-3, weight decay 1e-6, clipping 1, no EMA), trained for
# a time budget: 120 s by default, the issue-15 benchmarks use 600 s
DEFAULT_TRAIN_CONFIG = TrainConfig(epochs=10**6, lr=1e-3, weight_decay=1e-6, lr_schedule="multistep", ema_decay=0.0,
                                   grad_clip=1.0, max_time=120.0, progress=False)
# grid cells (samples x windows x series x steps) per network call while sampling: bounds memory;
# small calls stay in cache (7 ETTh1 windows x 100 paths on one thread: 29 s at 16384, 38 s at 65536)
_CELLS_PER_CALL = 16384


def standardise(y: torch.Tensor, context_length: int, floor: Optional[torch.Tensor] = None):
    """Per-window, per-series standardisation by the observed context.

    ``y`` (B, D, L) with NaN where unobserved -> ``(z, observed, loc, scale, seen)``: ``z`` is
    ``(y - loc) / scale`` with 0 where unobserved; ``loc``, ``scale`` (B, D, 1) are the mean and
    standard deviation of the observed context values, the scale at least ``floor`` (D,) (the model
    uses each series' typical one-step change in the training data, so a flat context, e.g. a
    pegged exchange rate, does not blow a later move up), and at least 1e-8 x (1 + |loc|).
    ``seen`` (B, D) says which series have an observed context value."""
    observed = ~torch.isnan(y)
    ctx, ctx_obs = y[..., :context_length], observed[..., :context_length]
    n = ctx_obs.sum(-1, keepdim=True)
    seen = n[..., 0] > 0
    loc = torch.where(ctx_obs, ctx, torch.zeros_like(ctx)).sum(-1, keepdim=True) / n.clamp(min=1)
    var = (torch.where(ctx_obs, ctx - loc, torch.zeros_like(ctx)) ** 2).sum(-1, keepdim=True) / n.clamp(min=1)
    scale = var.sqrt()
    if floor is not None:
        scale = torch.maximum(scale, floor.to(scale)[:, None])
    scale = torch.maximum(scale, 1e-8 * (1 + loc.abs()))
    z = torch.where(observed, (y - loc) / scale, torch.zeros_like(y))
    return z, observed.to(y.dtype), loc, scale, seen


def step_scale(series: list[np.ndarray]) -> np.ndarray:
    """Each series' standard deviation of one-step changes, pooled over ``series`` ((D, T) arrays
    with NaN), 0 where it cannot be computed: the scale floor of :func:`standardise`."""
    diffs = np.concatenate([np.diff(s, axis=1) for s in series], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a series with < 2 consecutive observations
        return np.nan_to_num(np.nanstd(diffs, axis=1)).astype(np.float32)


def naive_base(z: torch.Tensor, cond: torch.Tensor, context_length: int, season: int = 1) -> torch.Tensor:
    """The base forecast the diffusion runs around, on (B, D, L) grids: the context interpolated
    between its observed entries, and over the horizon the last ``season`` context values repeated
    (seasonal naive; ``season=1`` holds the last value)."""
    base = interpolate_masked(z, cond)  # over the horizon: the last observed context value, held
    if season > 1:
        horizon = z.shape[-1] - context_length
        idx = context_length - season + torch.arange(horizon, device=z.device) % season
        base = torch.cat([base[..., :context_length], base[..., idx]], dim=-1)
    return base


def calendar_features(start, length: int, freq: str) -> np.ndarray:
    """GluonTS' calendar features of ``freq`` (``time_features_from_frequency_str``: hour of day,
    day of week, ... each in [-0.5, 0.5]) for ``length`` steps from the period ``start``: (F, length)
    float32. The same features GluonTS' DeepAR feeds its network."""
    from gluonts.time_feature import time_features_from_frequency_str

    index = pd.period_range(pd.Period(start, freq=freq), periods=length, freq=freq)
    return np.stack([np.asarray(f(index), dtype=np.float32) for f in time_features_from_frequency_str(freq)])


def calendar_dim(freq: str) -> int:
    """How many calendar features :func:`calendar_features` gives for ``freq``."""
    from gluonts.time_feature import time_features_from_frequency_str

    return len(time_features_from_frequency_str(freq))


def _frequency_season(freq: str) -> int:
    """GluonTS' seasonality of ``freq`` (24 for hourly, 5 for business days, 7 for daily ...)."""
    from gluonts.time_feature import get_seasonality

    return int(get_seasonality(freq))


def choose_season(series: list[np.ndarray], context_length: int, prediction_length: int, season: int,
                  n_windows: int = 256, seed: int = 0) -> int:
    """``season`` or 1, whichever naive base (:func:`naive_base`) has the lower mean absolute error
    on the horizons of ``n_windows`` random training windows, in the model's standardised units.
    1 when ``season`` is 1 or longer than the context."""
    if season <= 1 or season > context_length:
        return 1
    length = context_length + prediction_length
    usable = [s for s in series if s.shape[1] >= length]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(usable), n_windows)
    windows = np.stack([usable[i][:, t:t + length] for i in picks
                        for t in [rng.integers(0, usable[i].shape[1] - length + 1)]])
    z, observed, _, _, seen = standardise(torch.from_numpy(windows), context_length)
    cond = observed * (torch.arange(length) < context_length)
    target = observed * (torch.arange(length) >= context_length) * seen[..., None]
    error = {s: float(((z - naive_base(z, cond, context_length, s)).abs() * target).sum()) for s in (1, season)}
    return season if error[season] < error[1] else 1


def standardised_lags(past: torch.Tensor, lags: int, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The last ``lags`` values of ``past`` (B, D, T) with NaN, in the units of the network's
    window (``(x - loc) / scale``), interpolated through gaps: the linear base's inputs."""
    seen = ~torch.isnan(past)
    return interpolate_masked(torch.where(seen, (past - loc) / scale, torch.zeros_like(past)), seen)[..., -lags:]


class CSDIForecastModel(nn.Module):
    """CSDINet + a discrete quadratic schedule + the v-prediction loss on the horizon."""

    def __init__(self, target_dim: int, context_length: int, prediction_length: int, num_train_steps: int = 50,
                 beta_start: float = 1e-4, beta_end: float = 0.5, channels: int = 32, layers: int = 2,
                 heads: int = 4, season: int = 1, time_feature_dim: int = 0, lags: int = 0,
                 residual_windows: int = 1):
        super().__init__()
        if not 1 <= season <= context_length:
            raise ValueError(f"season must lie in [1, context_length={context_length}], got {season}")
        if not 0 <= lags:
            raise ValueError(f"lags must be >= 0, got {lags}")
        self.context_length, self.prediction_length, self.season = context_length, prediction_length, season
        # lags > 0: the base over the horizon is the linear base (:mod:`.linear_base`), fitted by the
        # estimator on the last `lags` values, which may reach further back than the network's context
        self.lags, self.past_length = lags, max(context_length, lags)
        keep = lags > 0  # checkpoints of models without it carry none of these
        self.register_buffer("linear_weight", torch.zeros(target_dim, prediction_length, lags), persistent=keep)
        self.register_buffer("linear_bias", torch.zeros(target_dim, prediction_length), persistent=keep)
        self.register_buffer("residuals", torch.zeros(residual_windows, target_dim, prediction_length),
                             persistent=keep)
        self.num_train_steps = num_train_steps
        self.net = CSDINet(target_dim, channels=channels, layers=layers, heads=heads, time_feature_dim=time_feature_dim)
        self.schedule = DiscreteSchedule("quad", num_train_steps, beta_start, beta_end, dtype="float32")  # CSDI's
        length = context_length + prediction_length
        self.register_buffer("context_mask", (torch.arange(length) < context_length).float(), persistent=False)
        self.register_buffer("positions", torch.arange(length).float(), persistent=False)
        self.register_buffer("scale_floor", torch.zeros(target_dim))  # set from the training data

    def _condition(self, y: torch.Tensor):
        """Windows ``y`` (B, D, past_length + prediction_length) -> the network's (context +
        horizon) grid standardised by its context, its masks, the base, ``loc``, ``scale``, ``seen``."""
        c = self.context_length
        z, observed, loc, scale, seen = standardise(y[..., self.past_length - c:], c, self.scale_floor)
        cond = observed * self.context_mask
        base = naive_base(z, cond, c, self.season)
        if self.lags:
            lags = standardised_lags(y[..., :self.past_length], self.lags, loc, scale)
            future = torch.einsum("bdl,dhl->bdh", lags, self.linear_weight) + self.linear_bias
            base = torch.cat([base[..., :c], future], dim=-1)
        return z, observed, cond, base, loc, scale, seen

    def _net(self, base: torch.Tensor, cond: torch.Tensor, time_features: Optional[torch.Tensor] = None):
        """The network as ``net(x_t, t)`` predicting v, conditioned on ``base``, ``cond`` and the
        calendar ``time_features`` (B, L, F) when the network takes them."""
        side = self.net.side_info(self.positions.expand(base.shape[0], -1), cond, time_features)

        def net(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.net(torch.stack([base, x_t * (1 - cond)], dim=1), t, side)

        return net

    def loss(self, batch: dict) -> torch.Tensor:
        """Denoising loss on the observed horizon entries of windows ``batch["values"]`` (B, D, L)
        (with ``batch["time_features"]`` (B, L, F) when the network takes calendar features)."""
        z, observed, cond, base, _, _, seen = self._condition(batch["values"])
        target = observed * (1 - self.context_mask) * seen[..., None].to(z.dtype)
        t = draw_discrete_t(z.shape[0], self.num_train_steps, z.device)
        features = batch.get("time_features")  # (B, window, F): the network reads its last context + horizon
        features = None if features is None else features[:, -(self.context_length + self.prediction_length):]
        net = self._net(base, cond, features)
        return denoising_mse(net, z - base, t, self.schedule.alpha_bar_of, "v", mask=target)

    @torch.no_grad()
    def sample(self, past: torch.Tensor, n_samples: int, sampler: str = "dpm_solver",
               sampler_steps: Optional[int] = 10, generator: Optional[torch.Generator] = None,
               time_features: Optional[torch.Tensor] = None, spread: str = "diffusion") -> torch.Tensor:
        """``past`` (B, D, past_length): the last ``max(context_length, lags)`` steps, NaN where
        unobserved -> (n_samples, B, D, prediction_length).
        ``time_features`` (B, context_length + prediction_length, F): the calendar features of the
        window, when the network takes them. ``spread="residuals"``: no network, the base plus
        whole windows of the linear base's leave-one-out residuals drawn at random (a residual
        bootstrap; the forecast of an untrained model).

        Every series needs an observed value in its context (its scale comes from there)."""
        b, d, _ = past.shape
        future = torch.full((b, d, self.prediction_length), float("nan"), dtype=past.dtype, device=past.device)
        z, _, cond, base, loc, scale, seen = self._condition(torch.cat([past, future], dim=-1))
        if not bool(seen.all()):
            w, s = (int(i) for i in torch.nonzero(~seen)[0])
            raise ValueError(f"series {s} of window {w} has no observed value in the last {self.context_length} "
                             "steps (the context); CSDI forecasting scales each series by its context: drop that "
                             "series or build the estimator with a longer context_length")
        if spread == "residuals":
            pick = torch.randint(0, self.residuals.shape[0], (n_samples, b), generator=generator,
                                 device=self.residuals.device)
            paths = base[..., self.context_length:] + self.residuals[pick]       # (S, B, D, H)
            return paths * scale + loc
        if spread != "diffusion":
            raise ValueError(f"spread must be 'diffusion' or 'residuals', got {spread!r}")
        per_call = max(1, _CELLS_PER_CALL // z[0].numel() // b) if b else 1
        out = []
        for start in range(0, n_samples, per_call):
            m = min(per_call, n_samples - start)
            base_r, cond_r = repeat_samples(base, m), repeat_samples(cond, m)
            tf_r = None if time_features is None else repeat_samples(time_features.to(base), m)
            model = as_eps_model(self._net(base_r, cond_r, tf_r), "v", self.schedule.alpha_bar_of)
            x = samplers.run(model, sampler=sampler, sampler_steps=sampler_steps, schedule=self.schedule,
                             shape=base_r.shape, dtype=base.dtype, device=base.device, generator=generator)
            out.append((x + base_r).reshape(m, *z.shape))
        samples = torch.cat(out)[..., self.context_length:]
        return samples * scale + loc


_D = DEFAULT_TRAIN_CONFIG


class _RandomWindows:
    """``num_batches_per_epoch`` batches of windows drawn uniformly from all (entry, start) pairs;
    the draws use torch's global generator, which :func:`multidiff.core.training.fit` seeds."""

    def __init__(self, series: list[np.ndarray], length: int, batch_size: int, num_batches_per_epoch: int,
                 features: Optional[list[np.ndarray]] = None):
        self.series, self.length, self.features = series, length, features  # features: (F, T) per entry
        self.batch_size, self.batches = batch_size, num_batches_per_epoch
        self.counts = np.array([s.shape[1] - length + 1 for s in series])
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])

    def __len__(self) -> int:
        return self.batches

    def shard(self, rank: int, world_size: int, generator=None, even: bool = True) -> "_RandomWindows":
        """Data-parallel training: each process draws its own windows (``fit`` seeds each
        process's generator apart), ``num_batches_per_epoch`` batches on every one."""
        return self

    def __iter__(self) -> Iterator[dict]:
        for _ in range(self.batches):
            flat = torch.randint(0, int(self.offsets[-1]), (self.batch_size,)).numpy()
            entry = np.searchsorted(self.offsets, flat, side="right") - 1
            start = flat - self.offsets[entry]
            batch = {"values": torch.from_numpy(np.stack([self.series[e][:, s:s + self.length]
                                                         for e, s in zip(entry, start)]))}
            if self.features is not None:
                batch["time_features"] = torch.from_numpy(np.stack([self.features[e][:, s:s + self.length].T
                                                                    for e, s in zip(entry, start)]))
            yield batch


def _targets(dataset, target_dim: int, freq: Optional[str], min_length: int, what: str,
             context_length: int) -> list[dict]:
    """Entries as dicts with a float32 (D, T) ``target`` taken off its float64 ``level`` (D,)
    (:func:`~multidiff.datasets.gluonts_adapters.shift_to_level`: 0 but for series far from zero,
    whose steps float32 would round away); clear errors for entries the model cannot use."""
    out = []
    for data in dataset:
        data, level = shift_to_level(data, context_length, stacklevel=4)
        target = np.asarray(data["target"], dtype=np.float32)
        item = data.get("item_id", "?")
        if target.ndim != 2:
            raise ValueError(f"entry {item!r} has a {target.ndim}-D target; CSDI forecasting needs multivariate "
                             "entries with target shape (target_dim, T): group univariate series with "
                             "multidiff.datasets.gluonts_adapters.to_multivariate (MultivariateGrouper)")
        if target.shape[0] != target_dim:
            raise ValueError(f"entry {item!r} has {target.shape[0]} series but the estimator was built with "
                             f"target_dim={target_dim}; build it with target_dim={target.shape[0]}")
        if target.shape[1] < min_length:
            raise ValueError(f"entry {item!r} has {target.shape[1]} time steps; {what} needs at least {min_length}; "
                             "use a shorter context_length")
        start = data["start"]
        if freq is not None and isinstance(start, pd.Period) and not same_freq(start, freq):
            raise ValueError(f"entry {item!r} has frequency {start.freqstr!r} but the model was built with "
                             f"freq={freq!r}")
        out.append({**data, "target": target, "level": np.broadcast_to(level, target.shape[:1])})
    if not out:
        raise ValueError(f"the dataset for {what} is empty")
    return out


class CSDIForecastPredictor(Predictor):
    """GluonTS predictor of a trained :class:`CSDIForecastModel`: ``predict(dataset)`` yields a
    ``SampleForecast`` (samples (S, H, D)) per entry, forecasting the steps after its end."""

    def __init__(self, model: CSDIForecastModel, config: dict, freq: str, batch_size: int = 32,
                 num_parallel_samples: int = 100, sampler: str = "dpm_solver", sampler_steps: Optional[int] = 10,
                 device: str = "cpu", spread: str = "diffusion") -> None:
        super().__init__(prediction_length=model.prediction_length)
        if spread not in ("diffusion", "residuals"):
            raise ValueError(f"spread must be 'diffusion' or 'residuals', got {spread!r}")
        if spread == "residuals" and not config.get("lags"):
            raise ValueError("spread='residuals' needs a model with the linear base (lags > 0)")
        self.spread = spread
        self.model, self.config, self.freq, self.batch_size = model.eval(), dict(config), freq, batch_size
        self.num_parallel_samples = check_whole("num_parallel_samples", num_parallel_samples)
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.set_sampler(sampler, sampler_steps)

    def set_sampler(self, sampler: str, sampler_steps: Optional[int] = None) -> "CSDIForecastPredictor":
        """``"ddpm"`` (all training steps), or ``"ddim"`` / ``"dpm_solver"`` with ``sampler_steps`` (e.g. 10)."""
        sampler = samplers.resolve(sampler, "discrete")
        check_whole("sampler_steps", sampler_steps, 1, self.model.num_train_steps, none="all training steps")
        self.sampler, self.sampler_steps = sampler, sampler_steps
        return self

    def predict(self, dataset, num_samples: Optional[int] = None):
        """Forecasts for each entry of ``dataset`` (multivariate, target (D, T)); ``num_samples`` paths
        (default ``num_parallel_samples``), all windows of a batch in one sampling chain. The noise
        comes from torch's global generator (seed it for reproducible forecasts)."""
        num_samples = check_whole("num_samples", num_samples, none="num_parallel_samples")
        check_dataset(dataset, "dataset")
        entries = _targets(dataset, self.model.net.n_features, self.freq, 1, "prediction", self.model.context_length)
        return self._predict(entries, num_samples or self.num_parallel_samples)

    def _predict(self, entries: list[dict], num_samples: int):
        c = self.model.past_length
        for first in range(0, len(entries), self.batch_size):
            chunk = entries[first:first + self.batch_size]
            past = np.full((len(chunk), self.model.net.n_features, c), np.nan, dtype=np.float32)
            for i, e in enumerate(chunk):
                tail = e["target"][:, -c:]
                past[i, :, c - tail.shape[1]:] = tail
            features = None
            if self.model.net.time_feature_dim:  # the calendar of the network's context and the horizon
                h, ctx = self.model.prediction_length, self.model.context_length
                features = torch.from_numpy(np.stack([
                    calendar_features(pd.Period(e["start"], freq=self.freq) + e["target"].shape[1] - ctx, ctx + h,
                                      self.freq).T for e in chunk])).to(self.device)
            samples = self.model.sample(torch.from_numpy(past).to(self.device), num_samples, self.sampler,
                                        self.sampler_steps, time_features=features,
                                        spread=self.spread).cpu().numpy()  # (S, B, D, H)
            for i, e in enumerate(chunk):
                start = pd.Period(e["start"], freq=self.freq) + e["target"].shape[1]
                paths = samples[:, i].transpose(0, 2, 1)
                if e["level"].any():  # a series far from zero: back to its level, in float64
                    paths = paths.astype(np.float64) + e["level"]
                yield SampleForecast(samples=paths, start_date=start, item_id=e.get("item_id"))

    def serialize(self, path: str | os.PathLike) -> None:
        """Write the predictor to the folder ``path`` (safetensors weights + JSON)."""
        path = _folder(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path / "gluonts-config.json", {"type": f"{type(self).__module__}.{type(self).__qualname__}"})
        settings = {"model": self.config, "freq": self.freq, "batch_size": self.batch_size,
                    "num_parallel_samples": self.num_parallel_samples, "sampler": self.sampler,
                    "sampler_steps": self.sampler_steps, "spread": self.spread,
                    "schedule": self.model.schedule.to_config()}
        save_checkpoint(path / "weights", {"model": self.model.state_dict()}, settings, kind=_KIND)

    @classmethod
    def deserialize(cls, path: str | os.PathLike, device: Optional[str] = None) -> "CSDIForecastPredictor":
        """The predictor :meth:`serialize` wrote to the folder ``path`` (``str`` or ``Path``)."""
        path = _folder(path)
        if not (path / "weights").exists():
            raise FileNotFoundError(f"{path} holds no saved CSDI forecaster (no weights/); "
                                    "save one with predictor.serialize(path)")
        states, settings = load_checkpoint(path / "weights", kind=_KIND, max_kind_version=1)
        model = CSDIForecastModel(**settings["model"])
        model.schedule = recorded_schedule(settings, model.schedule, str(path))
        load_state_strict(model, states["model"], str(path))
        return cls(model, settings["model"], settings["freq"], settings["batch_size"],
                   settings["num_parallel_samples"], settings["sampler"], settings["sampler_steps"],
                   device=device or "auto", spread=settings.get("spread", "diffusion"))


def _folder(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a pathlib.Path (a folder), got {type(path).__name__}")
    return Path(path)


class CSDIForecastEstimator:
    """CSDI forecasting estimator for multivariate GluonTS datasets (entries with target (D, T)).

    ``train(dataset)`` draws random windows of ``context_length + prediction_length`` steps and
    trains for ``max_time`` seconds (or ``max_steps`` / ``epochs`` x ``num_batches_per_epoch``
    batches (GluonTS' word), whichever ends first) through :func:`multidiff.core.training.fit`; it returns a
    :class:`CSDIForecastPredictor`. ``train_config`` (default :data:`DEFAULT_TRAIN_CONFIG`) sets
    the rest of the optimisation; ``epochs``, ``max_steps``, ``max_time`` and ``lr`` override it
    when they differ from its values, and ``seed``, ``device`` and ``progress`` always do.

    ``base``: ``"linear"`` (default; :mod:`.linear_base`, reading the last ``lags`` context values,
    default all of them) or ``"naive"``. ``max_time=0``: no training step; the predictor forecasts
    the linear base plus whole windows of its leave-one-out residuals (``spread="residuals"``).

    ``season`` (naive base): the base forecast repeats the last ``season`` context values (1, the default:
    holds the last value). ``season=None`` picks 1 or the frequency's season (GluonTS'
    ``get_seasonality``: 24 for hourly data) by which naive forecast errs less on training windows
    (:func:`choose_season`); ``season_`` says which after ``train``. Measured on ETTh1 at 600 s
    (benchmarks/RESULTS.md), the seasonal base (which that rule picks there) gave a worse CRPS-sum
    (0.188 against 0.164), hence the default of 1.

    ``time_features``: also feed the network GluonTS' calendar features of ``freq`` (hour of day,
    day of week, ...; :func:`calendar_features`) as side information, as DeepAR does.

    Defaults are sized for a CPU: 32 channels, 2 layers, 4 heads, 50 training steps (the
    imputation task's), context 2 x horizon (4 x with the naive base), DPM-Solver++(2M) with 10 steps for sampling (within
    5 % of the 50-step chain's CRPS-sum on exchange_rate and ETTh1, benchmarks/RESULTS.md).
    """

    def __init__(self, freq: str, prediction_length: int, target_dim: int, context_length: Optional[int] = None,
                 num_train_steps: int = 50, beta_start: float = 1e-4, beta_end: float = 0.5, channels: int = 32,
                 layers: int = 2, heads: int = 4, batch_size: int = 16, num_batches_per_epoch: int = 100,
                 epochs: int = _D.epochs, max_steps: Optional[int] = _D.max_steps,
                 max_time: Optional[float] = _D.max_time, lr: float = _D.lr, num_parallel_samples: int = 100,
                 sampler: str = "dpm_solver", sampler_steps: Optional[int] = 10, seed: int = 0, device: str = "auto",
                 progress: bool = False, checkpoint_dir: Optional[str] = None,
                 train_config: Optional[TrainConfig] = None, season: Optional[int] = 1,
                 time_features: bool = False, base: str = "linear", lags: Optional[int] = None) -> None:
        if not freq:
            raise ValueError("freq is required (e.g. 'h', 'D', 'B')")
        freq = period_freq(freq)  # GluonTS dates entries by periods: "ME" is the period "M"
        check_whole("prediction_length", prediction_length)
        check_whole("target_dim", target_dim)
        context_length = check_whole("context_length", context_length,
                                     none="2 x prediction_length with the linear base, 4 x with the naive one")
        for name, value in (("num_train_steps", num_train_steps), ("channels", channels), ("layers", layers),
                            ("heads", heads), ("batch_size", batch_size),
                            ("num_batches_per_epoch", num_batches_per_epoch), ("num_parallel_samples", num_parallel_samples)):
            check_whole(name, value)
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be a multiple of heads ({heads})")
        sampler = samplers.resolve(sampler, "discrete")
        check_whole("sampler_steps", sampler_steps, 1, num_train_steps, none="all training steps")
        self.freq, self.prediction_length, self.target_dim = freq, prediction_length, target_dim
        if base not in BASES:
            raise ValueError(f"base must be one of {BASES}, got {base!r}")
        # the linear base reads its own lags: the network's context only shapes the spread, and a
        # short one samples 2x faster at the same CRPS-sum (ETTh1, benchmarks/RESULTS.md)
        self.context_length = context_length or (2 if base == "linear" else 4) * prediction_length
        self.season = check_whole("season", season, 1, self.context_length,
                                  none="the better of 1 and the frequency's season on the training windows")
        self.lags = check_whole("lags", lags, 1, none="a week of the frequency's season (168 for hourly data) or 4 x "
                                "prediction_length, at least context_length, at most 512, shortened to fit the "
                                "training data")
        if base == "naive" and lags is not None:
            raise ValueError("lags is an option of the linear base; drop it or pass base='linear'")
        self.base = base
        # max_time=0: no training step; the forecast is the base plus its resampled residuals
        self.zero_shot = not isinstance(max_time, bool) and isinstance(max_time, (int, float)) and max_time == 0
        if self.zero_shot:
            if base != "linear":
                raise ValueError("max_time=0 (no training) needs base='linear': its residuals give the spread")
            max_time = _D.max_time
        self.model_config = {"target_dim": target_dim, "context_length": self.context_length,
                             "prediction_length": prediction_length, "num_train_steps": num_train_steps,
                             "beta_start": beta_start, "beta_end": beta_end, "channels": channels,
                             "layers": layers, "heads": heads,
                             "time_feature_dim": calendar_dim(freq) if time_features else 0}
        self.train_config = resolve_train_config(
            DEFAULT_TRAIN_CONFIG, train_config, {"epochs": epochs, "max_steps": max_steps, "max_time": max_time, "lr": lr},
            {"seed": seed, "device": device, "progress": progress})
        self.batch_size, self.num_batches_per_epoch = batch_size, num_batches_per_epoch
        self.num_parallel_samples, self.sampler, self.sampler_steps = num_parallel_samples, sampler, sampler_steps
        self.seed, self.device, self.checkpoint_dir = seed, device, checkpoint_dir
        self.train_result_: Optional[TrainResult] = None

    def train(self, training_data, validation_data=None, resume: bool = False) -> CSDIForecastPredictor:
        """Train on ``training_data`` (GluonTS dataset of multivariate entries); with
        ``validation_data`` the weights with the lowest loss on its last windows are kept."""
        check_dataset(training_data)
        if validation_data is not None:
            check_dataset(validation_data, "validation_data")
        lags = self._lags(training_data) if self.base == "linear" else 0
        length = max(self.context_length, lags) + self.prediction_length
        entries = _targets(training_data, self.target_dim, self.freq, length, "training", self.context_length)
        train = [e["target"] for e in entries]
        calendar = self.model_config["time_feature_dim"] > 0
        features = [calendar_features(e["start"], e["target"].shape[1], self.freq) for e in entries] if calendar else None
        val = None
        if validation_data is not None:
            val_entries = _targets(validation_data, self.target_dim, self.freq, length, "validation",
                                   self.context_length)
            val = [{"values": torch.from_numpy(np.stack([e["target"][:, -length:] for e in val_entries]))}]
            if calendar:
                val[0]["time_features"] = torch.from_numpy(np.stack([
                    calendar_features(pd.Period(e["start"], freq=self.freq) + e["target"].shape[1] - length, length,
                                      self.freq).T for e in val_entries]))
        season = self.season or choose_season(train, self.context_length, self.prediction_length,
                                              _frequency_season(self.freq), seed=self.seed)
        floor = torch.from_numpy(step_scale(train))
        linear = self._fit_linear(train, lags, floor) if lags else None
        config = {**self.model_config, "season": season, "lags": lags,
                  "residual_windows": 1 if linear is None else int(linear[2].shape[0])}
        with torch.random.fork_rng(devices=[]):  # the initial weights are part of what `seed` fixes
            torch.manual_seed(self.seed)
            model = CSDIForecastModel(**config)
        model.scale_floor.copy_(floor)
        if linear is not None:
            for buffer, value in zip((model.linear_weight, model.linear_bias, model.residuals), linear):
                buffer.copy_(value)
        if self.zero_shot:
            self.train_result_ = None
        else:
            self.train_result_ = fit(model, lambda m, b: m.loss(b),
                                     _RandomWindows(train, length, self.batch_size, self.num_batches_per_epoch, features),
                                     self.train_config, val_batches=val, checkpoint_dir=self.checkpoint_dir,
                                     resume=resume, extra_config={"model": config})
        self.season_, self.lags_ = season, lags
        return CSDIForecastPredictor(model.cpu(), config, self.freq, self.batch_size,
                                     self.num_parallel_samples, self.sampler, self.sampler_steps, self.device,
                                     spread="residuals" if self.zero_shot else "diffusion")

    def _lags(self, training_data) -> int:
        """``lags``, or by default a week of the frequency's season (GluonTS' ``get_seasonality``:
        168 for hourly data) or 4 x ``prediction_length``, whichever is longer (exchange rates,
        business days, horizon 30: 120 lags score CRPS-sum 0.0092 zero-shot against 0.0098 for a
        week's 35), at least ``context_length``, at most 512, and short enough that the shortest
        training entry holds 32 windows (never below ``context_length``)."""
        if self.lags:
            return self.lags
        shortest = min(np.shape(d["target"])[-1] for d in training_data)
        room = shortest - self.prediction_length - 31
        week = max(7 * _frequency_season(self.freq), 4 * self.prediction_length)
        return max(self.context_length, min(week, 512, room))

    def _fit_linear(self, train: list[np.ndarray], lags: int, floor: torch.Tensor, max_windows: int = 20000):
        """The linear base (:func:`.linear_base.fit_linear_base`) on up to ``max_windows`` training
        windows (every start when there are fewer; a seeded draw of them otherwise), in the units
        of each window's network context, as :meth:`CSDIForecastModel._condition` computes them."""
        c, h = self.context_length, self.prediction_length
        past = max(c, lags)
        length = past + h
        starts = [(i, t) for i, s in enumerate(train) for t in range(s.shape[1] - length + 1)]
        if len(starts) > max_windows:
            pick = np.random.default_rng(self.seed).choice(len(starts), max_windows, replace=False)
            starts = [starts[i] for i in np.sort(pick)]
        y = torch.from_numpy(np.stack([train[i][:, t:t + length] for i, t in starts]))
        z, observed, loc, scale, _ = standardise(y[..., past - c:], c, floor)
        x = standardised_lags(y[..., :past], lags, loc, scale)
        return fit_linear_base(x, z[..., c:], observed[..., c:], seed=self.seed)
