"""Probabilistic forecasting with TimeGrad (Rasul et al., ICML 2021), native to GluonTS and pandas.

:class:`TimeGradEstimator` is a GluonTS ``PyTorchLightningEstimator``: ``est.train(dataset)``
trains :class:`multidiff.nets.timegrad.TimeGradModel` through a ``lightning.Trainer`` (so
Lightning's devices / strategies apply) on windows cut by GluonTS' ``InstanceSplitter`` and
returns a :class:`TimeGradPredictor` whose ``predict`` yields ``SampleForecast`` objects with
samples (S, H, D).
"""
from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import logging
import math
import numbers
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

with warnings.catch_warnings():  # gluonts.json's import-time advert for orjson / ujson
    warnings.filterwarnings("ignore", message=r"Using `json`-module", category=UserWarning)
    from gluonts.core.component import validated
    from gluonts.core.serde import dump_json, load_json
    from gluonts.dataset.field_names import FieldName
    from gluonts.dataset.loader import as_stacked_batches
    from gluonts.env import env
    from gluonts.itertools import Cached, Cyclic, select
    from gluonts.model.forecast import SampleForecast
    from gluonts.time_feature import time_features_from_frequency_str
    from gluonts.torch.model.estimator import PyTorchLightningEstimator, TrainOutput
    from gluonts.torch.model.predictor import PyTorchPredictor
    from gluonts.transform import (AddAgeFeature, AddObservedValuesIndicator, AddTimeFeatures, AsNumpyArray, Chain,
                                   ExpectedNumInstanceSampler, InstanceSplitter, MapTransformation, TestSplitSampler,
                                   ValidationSplitSampler, VstackFeatures)

from ...core.checkpoint import check_kind, load_checkpoint, register_kind, save_checkpoint
from ...core.device import resolve_device, seeded
from ...core.schedules import recorded_schedule
from ...core.io import write_json_atomic, write_text_atomic
from ...core.validate import check_whole
from ...datasets.gluonts_adapters import LevelShifted, check_dataset, period_freq, same_freq, shift_to_level
from ...core import samplers
from ...core.training import TrainConfig, resolve_train_config
from .timegrad_model import TimeGradModel

__all__ = ["TimeGradEstimator", "TimeGradPredictor", "TimeGradLightningModule", "CheckMultivariate",
           "default_lags", "PAPER_SETTINGS", "DEFAULT_TRAIN_CONFIG"]

# GluonTS builds pd.Period objects; pandas 2.x deprecates them for business days ("B", exchange_rate)
warnings.filterwarnings("ignore", message=r".*(BDay|PeriodDtype\[B\]).*deprecated", category=FutureWarning)

# 2: num_train_steps / sampler_steps in predictor.json and the weights' config.
_KIND_VERSION = 2
register_kind("forecasting.timegrad", "multidiff.tasks.forecasting.TimeGradPredictor.deserialize(DIR/..) (the folder "
                                      "that holds predictor.json)")
PREDICTION_INPUT_NAMES = ["past_target", "past_observed_values", "past_time_feat", "future_time_feat"]
TRAINING_INPUT_NAMES = PREDICTION_INPUT_NAMES + ["future_target", "future_observed_values"]
_VALIDATION_SEED = 12345  # the fixed draws of the validation loss (see TimeGradLightningModule.validation_step)

# whole-number arguments of TimeGradEstimator: (lowest value, meaning of None or None when None is not allowed)
_WHOLE_ARGS = {"prediction_length": (1, None), "target_dim": (1, None), "context_length": (1, "prediction_length"),
               "num_layers": (1, None), "hidden_size": (1, None), "num_train_steps": (1, None),
               "residual_layers": (1, None), "residual_channels": (1, None), "dilation_cycle": (1, None),
               "batch_size": (1, None), "num_batches_per_epoch": (1, None), "epochs": (1, None), "max_steps": (1, "no limit"),
               "num_parallel_samples": (1, None), "sampler_steps": (1, "the full grid"), "seed": (0, "no seeding")}


def _check_whole_args(init):
    """Check the whole-number arguments with :func:`check_whole` *before* GluonTS' ``@validated()``
    (pydantic v1) sees them: it would silently truncate ``prediction_length=2.5`` to 2."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        given = signature.bind(self, *args, **kwargs).arguments
        for name, (low, none) in _WHOLE_ARGS.items():
            if name in given:
                value = given[name]
                if name == "context_length" and isinstance(value, numbers.Integral) and value == 0:
                    value = None  # 0 also means the default
                check_whole(name, value, low, none=none)
        return init(self, *args, **kwargs)

    return wrapper


_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")


@contextlib.contextmanager
def _lightning_output(verbose: bool):
    """Without ``verbose``, hide Lightning's console output while training: the "GPU available"
    banner, tips and adverts, "`Trainer.fit` stopped", and the warnings Lightning raises
    (e.g. deprecations inside Lightning, "no val_dataloader"). Warnings from elsewhere still show."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"(lightning|pytorch_lightning|lightning_fabric)(\.|$)")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class _BestWeights(pl.Callback):
    """Keeps in memory the weights of the epoch with the lowest ``monitor`` loss. GluonTS restores
    that epoch through a ``ModelCheckpoint`` file (and prints a line per epoch); this writes nothing."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.best, self.state = monitor, math.inf, None

    def _update(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and math.isfinite(float(value)) and float(value) < self.best:
            self.best = float(value)
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_train_epoch_end(self, trainer, module) -> None:
        if self.monitor == "train_loss":
            self._update(trainer, module)

    def on_validation_end(self, trainer, module) -> None:
        if self.monitor == "val_loss" and not trainer.sanity_checking:
            self._update(trainer, module)


# TimeGrad's optimisation (Rasul et al. 2021, pytorch-ts): Adam 1e-3 at a constant rate, weight decay
# 1e-8, gradient clipping at 10, no EMA, 20 epochs; trained by Lightning's Trainer (see
# TimeGradEstimator), which honours these fields of TrainConfig and refuses the others when changed
DEFAULT_TRAIN_CONFIG = TrainConfig(epochs=20, lr=1e-3, weight_decay=1e-8, lr_schedule="constant", ema_decay=0.0,
                                   grad_clip=10.0, progress=False)
_D = DEFAULT_TRAIN_CONFIG
# TrainConfig fields Lightning's Trainer here does not implement: they must keep these values
_UNSUPPORTED = {"lr_schedule": "constant", "warmup_steps": 0, "ema_decay": 0.0, "ema_min_windows": 0.0, "patience": 0,
                "precision": "auto"}

# Rasul et al. 2021 (Sec. 4 and the pytorch-ts reference): the estimator's defaults are these
# already; the preset names them so a run can ask for the paper explicitly, e.g. next to
# forecast()'s time-bounded default (max_time=120 s).
PAPER_SETTINGS = dict(num_layers=2, hidden_size=40, dropout_rate=0.1, num_train_steps=100, beta_start=1e-4, beta_end=0.1,
                      residual_layers=8, residual_channels=8, dilation_cycle=2, lr=1e-3, batch_size=64,
                      num_batches_per_epoch=100, epochs=20, num_parallel_samples=100, sampler="ddpm")


def default_lags(freq: str) -> List[int]:
    """TimeGrad's lags per frequency (pytorch-ts ``lags_for_fourier_time_features_from_frequency``)."""
    name = pd.tseries.frequencies.to_offset(freq).name.upper()
    table = {"M": [1, 12], "ME": [1, 12], "D": [1, 7, 14], "B": [1, 2], "H": [1, 24, 168], "MIN": [1, 4, 12, 24, 48]}
    return table.get(name, [1])


class CheckMultivariate(MapTransformation):
    """Fail early, with the fix, on entries the model cannot use."""

    @validated()
    def __init__(self, target_dim: int, freq: str, min_train_length: int, min_predict_length: int) -> None:
        self.target_dim, self.freq = target_dim, freq
        self.min_train_length, self.min_predict_length = min_train_length, min_predict_length

    def map_transform(self, data: Dict[str, Any], is_train: bool) -> Dict[str, Any]:
        """Return ``data`` unchanged, or raise ``ValueError`` naming the entry that TimeGrad cannot take."""
        target = np.asarray(data[FieldName.TARGET])
        item = data.get(FieldName.ITEM_ID, "?")
        if target.ndim != 2:
            raise ValueError(f"entry {item!r} has a {target.ndim}-D target; TimeGrad needs multivariate entries with "
                             "target shape (target_dim, T): group univariate series with "
                             "multidiff.datasets.gluonts_adapters.to_multivariate (MultivariateGrouper)")
        if target.shape[0] != self.target_dim:
            raise ValueError(f"entry {item!r} has {target.shape[0]} series but the estimator was built with "
                             f"target_dim={self.target_dim}; build it with target_dim={target.shape[0]}")
        need = self.min_train_length if is_train else self.min_predict_length
        if target.shape[1] < need:
            raise ValueError(f"entry {item!r} has {target.shape[1]} time steps, too short: "
                             f"{'training' if is_train else 'prediction'} needs at least {need} "
                             "(context_length [+ prediction_length]); use a shorter context_length")
        start = data[FieldName.START]
        if isinstance(start, pd.Period) and not same_freq(start, self.freq):
            raise ValueError(f"entry {item!r} has frequency {start.freqstr!r} but the estimator was built with "
                             f"freq={self.freq!r}")
        return data


class TimeGradLightningModule(pl.LightningModule):
    """Lightning wrapper of :class:`TimeGradModel`: the model owns its loss; Adam as TimeGrad."""

    @validated()
    def __init__(self, model_kwargs: dict, lr: float = 1e-3, weight_decay: float = 1e-8) -> None:
        super().__init__()
        self.model = TimeGradModel(**model_kwargs)
        self.lr, self.weight_decay = lr, weight_decay

    def forward(self, *args, **kwargs):
        """The wrapped :class:`TimeGradModel` (GluonTS calls it to sample)."""
        return self.model(*args, **kwargs)

    def _loss(self, batch, name: str):
        loss = self.model.loss(**select(TRAINING_INPUT_NAMES, batch))
        self.log(name, loss, on_epoch=True, on_step=False, prog_bar=False, batch_size=len(batch["past_target"]))
        return loss

    def training_step(self, batch, batch_idx: int):
        """Lightning hook: the batch's diffusion loss, logged as ``train_loss``."""
        return self._loss(batch, "train_loss")

    def validation_step(self, batch, batch_idx: int):
        """Lightning hook: the batch's diffusion loss with fixed noise, logged as ``val_loss``."""
        # the same diffusion times and noise every epoch, as core.training validates: the epochs' losses
        # then differ by their weights only (a fresh draw varies the loss by ~30 % on exchange_rate's
        # 5 windows, which would pick the best epoch at random); forked, so training draws as without it
        device = batch["past_target"].device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(_VALIDATION_SEED + batch_idx)
            return self._loss(batch, "val_loss")

    def configure_optimizers(self):
        """Lightning hook: Adam with the estimator's ``lr`` and ``weight_decay``."""
        return torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class TimeGradPredictor(PyTorchPredictor):
    """GluonTS predictor whose weights are saved with :mod:`multidiff.core.checkpoint`
    (safetensors + JSON, no pickle). ``TimeGradPredictor.deserialize(path)`` reads it back from a
    ``str`` or ``pathlib.Path``; GluonTS' generic ``gluonts.model.Predictor.deserialize(path)``
    works too but, in GluonTS itself, only with a ``pathlib.Path``."""

    @property
    def model(self) -> TimeGradModel:
        """The trained :class:`TimeGradModel` (network, schedule, sampler settings)."""
        return self.prediction_net.model

    @property
    def sampler(self) -> str:
        """The sampler's registered name (:func:`multidiff.core.samplers.resolve`); set it with :meth:`set_sampler`."""
        return self.model.sampler

    @property
    def sampler_steps(self) -> Optional[int]:
        """The sampler's steps (``None``: every diffusion step); set them with :meth:`set_sampler`."""
        return self.model.sampler_steps

    def set_sampler(self, sampler: str, sampler_steps: Optional[int] = None) -> "TimeGradPredictor":
        """``"ddpm"`` (all 100 steps: TimeGrad), or ``"ddim"`` / ``"dpm_solver"`` with 10-20 steps."""
        self.model.set_sampler(sampler, sampler_steps)
        return self

    def predict(self, dataset, num_samples: Optional[int] = None):
        """Forecasts for each entry; ``num_samples`` paths (default: the estimator's
        ``num_parallel_samples``) are drawn in one batched pass per step. A series far from zero
        (``1e9 + a random walk``) is forecast around its float64 level
        (:func:`~multidiff.datasets.gluonts_adapters.shift_to_level`): its samples come back in
        float64."""
        num_samples = check_whole("num_samples", num_samples, none="num_parallel_samples")  # now, not when iterated
        return self._predict(dataset, num_samples)

    def _predict(self, dataset, num_samples: Optional[int]):
        model, saved = self.model, self.model.num_parallel_samples
        model.num_parallel_samples = saved if num_samples is None else num_samples
        levels = collections.deque()

        def shifted():
            for entry in dataset:
                entry, level = shift_to_level(entry, model.context_length, stacklevel=5)
                levels.append(level)
                yield entry

        try:
            for fc in super().predict(shifted()):
                level = levels.popleft()
                if level.any():
                    fc = SampleForecast(np.asarray(fc.samples, dtype=np.float64) + level, fc.start_date, fc.item_id,
                                        fc.info)
                yield fc
        finally:
            model.num_parallel_samples = saved

    def serialize(self, path: str | os.PathLike) -> None:
        """Write the predictor to the folder ``path``: GluonTS' JSON and a safetensors checkpoint, no pickle."""
        import gluonts

        path = _as_path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"model": self.__version__, "gluonts": gluonts.__version__,
                "type": f"{type(self).__module__}.{type(self).__qualname__}"}
        write_json_atomic(path / "gluonts-config.json", meta)
        write_text_atomic(path / "predictor.json", dump_json(self))
        settings = {"sampler": self.sampler, "sampler_steps": self.sampler_steps,
                    "schedule": self.model.schedule.to_config()}
        save_checkpoint(path / "weights", {"prediction_net": self.prediction_net.state_dict()}, settings,
                        kind="forecasting.timegrad", kind_version=_KIND_VERSION)

    @classmethod
    def deserialize(cls, path: str | os.PathLike, device: Optional[str] = None) -> "TimeGradPredictor":
        """The predictor saved by :meth:`serialize` in the folder ``path`` (``str`` or ``Path``)."""
        path = _as_path(path)
        if (path / "weights").is_dir():  # another kind of predictor (e.g. CSDI's): say which, and its loader
            check_kind(path / "weights", "forecasting.timegrad", max_kind_version=_KIND_VERSION)
        if not (path / "predictor.json").is_file():
            raise FileNotFoundError(f"{path} holds no saved predictor (no predictor.json); "
                                    "save one with predictor.serialize(path)")
        predictor = load_json((path / "predictor.json").read_text())
        if not isinstance(predictor, cls):
            raise ValueError(f"{path} holds a {type(predictor).__name__}, not a {cls.__name__}")
        states, config = load_checkpoint(path / "weights", kind="forecasting.timegrad", max_kind_version=_KIND_VERSION)
        predictor.prediction_net.load_state_dict(states["prediction_net"])
        predictor.model.schedule = recorded_schedule(config, predictor.model.schedule, str(path))
        predictor.set_sampler(config["sampler"], config["sampler_steps"])
        return predictor.to(resolve_device(device or "auto"))


def _as_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a pathlib.Path (a folder), got {type(path).__name__}")
    return Path(path)


def _trainer_kwargs(cfg: TrainConfig, verbose: bool) -> Dict[str, Any]:
    """``lightning.Trainer``'s arguments for the :class:`TrainConfig` ``cfg``, quiet unless ``verbose``."""
    accelerator = cfg.accelerator if cfg.accelerator != "auto" else \
        "cpu" if resolve_device(cfg.device).type == "cpu" else "auto"
    kwargs = {"max_epochs": cfg.epochs, "gradient_clip_val": cfg.grad_clip or None, "accelerator": accelerator,
              "logger": False, "enable_checkpointing": False, "enable_progress_bar": bool(cfg.progress),
              "enable_model_summary": bool(verbose)}
    if cfg.max_steps is not None:
        kwargs["max_steps"] = cfg.max_steps
    if cfg.max_time is not None:
        kwargs["max_time"] = {"seconds": float(cfg.max_time)}
    for name, default in (("devices", 1), ("num_nodes", 1), ("strategy", "auto")):
        if getattr(cfg, name) != default:
            kwargs[name] = getattr(cfg, name)
    return kwargs


class TimeGradEstimator(PyTorchLightningEstimator):
    """TimeGrad estimator (Rasul et al. 2021) for multivariate GluonTS datasets.

    Defaults are TimeGrad's: 2-layer LSTM with 40 cells, context = prediction length, 100
    diffusion steps with linear betas 1e-4..0.1, 8 residual blocks of 8 channels, Adam 1e-3,
    batch 64, ``num_batches_per_epoch`` 100 (GluonTS' word), 20 epochs.

    The optimisation comes, as in every task, from a :class:`~multidiff.core.training.TrainConfig`:
    ``train_config`` (default :data:`DEFAULT_TRAIN_CONFIG`); ``epochs``, ``max_steps``,
    ``max_time`` and ``lr`` override it when they differ from its values, and ``seed``, ``device``
    and ``progress`` always do. Lightning's ``Trainer`` runs it: ``epochs`` -> ``max_epochs``,
    ``max_steps``, ``max_time``, ``grad_clip`` -> ``gradient_clip_val``, ``accelerator``,
    ``devices``, ``num_nodes``, ``strategy``; Adam takes ``lr`` and ``weight_decay``. A config
    that asks for what this loop lacks (a learning-rate schedule, warm-up, EMA, early stopping,
    a precision) is refused. ``trainer_kwargs`` go to ``lightning.Trainer`` as they are and
    override all of that.

    Training is quiet by default: no logger, no model summary, no checkpoint files (the weights
    of the epoch with the lowest loss, on ``validation_data`` when ``train`` gets it and on the
    training batches otherwise, are kept in memory and restored, as GluonTS does through a
    checkpoint file) and none of Lightning's console messages or warnings. ``progress=True``
    shows Lightning's progress bar; ``verbose=True`` shows Lightning's messages, warnings and model
    summary.
    """

    @_check_whole_args
    @validated()
    def __init__(self, freq: Optional[str], prediction_length: int, target_dim: int, context_length: Optional[int] = None,
                 lags_seq: Optional[List[int]] = None, cell_type: str = "lstm", num_layers: int = 2,
                 hidden_size: int = 40, dropout_rate: float = 0.1, num_train_steps: int = 100, beta_start: float = 1e-4,
                 beta_end: float = 0.1, residual_layers: int = 8, residual_channels: int = 8,
                 dilation_cycle: int = 2, scaling: bool = True, batch_size: int = 64,
                 num_batches_per_epoch: int = 100, epochs: int = _D.epochs, max_steps: Optional[int] = _D.max_steps,
                 max_time: Optional[float] = _D.max_time, lr: float = _D.lr, num_parallel_samples: int = 100,
                 sampler: str = "ddpm", sampler_steps: Optional[int] = None, seed: Optional[int] = None,
                 device: str = "auto", progress: bool = False, verbose: bool = False,
                 train_config: Optional[TrainConfig] = None, trainer_kwargs: Optional[Dict[str, Any]] = None) -> None:
        if not freq:
            raise ValueError("freq is required (e.g. 'h', 'D', 'B'); for a DataFrame, "
                             "multidiff.datasets.gluonts_adapters.frame_to_dataset infers it")
        freq = period_freq(freq)  # GluonTS dates entries by periods: "ME" is the period "M"
        sampler = samplers.resolve(sampler, "discrete")
        cfg = resolve_train_config(DEFAULT_TRAIN_CONFIG, train_config,
                                   {"epochs": epochs, "max_steps": max_steps, "max_time": max_time, "lr": lr},
                                   {"device": device, "progress": bool(progress),
                                    **({} if seed is None else {"seed": seed})})
        changed = [f"{k}={getattr(cfg, k)!r}" for k, v in _UNSUPPORTED.items() if getattr(cfg, k) != v]
        if changed:
            raise ValueError(f"TimeGrad trains through Lightning with Adam at a constant rate: {', '.join(changed)} "
                             f"is not supported; keep {', '.join(f'{k}={v!r}' for k, v in _UNSUPPORTED.items())}")
        self.train_config = cfg
        super().__init__(trainer_kwargs={**_trainer_kwargs(cfg, verbose), **(trainer_kwargs or {})})
        self.verbose = bool(verbose)
        self.freq, self.prediction_length, self.target_dim = freq, prediction_length, target_dim
        self.context_length = context_length or prediction_length
        self.lags_seq = lags_seq or default_lags(freq)
        self.time_features = time_features_from_frequency_str(freq)
        self.model_kwargs = dict(
            target_dim=target_dim, context_length=self.context_length, prediction_length=prediction_length,
            num_time_features=len(self.time_features) + 1, lags_seq=self.lags_seq, cell_type=cell_type,
            num_layers=num_layers, hidden_size=hidden_size, dropout_rate=dropout_rate, num_train_steps=num_train_steps,
            beta_start=beta_start, beta_end=beta_end, residual_layers=residual_layers,
            residual_channels=residual_channels, dilation_cycle=dilation_cycle,
            num_parallel_samples=num_parallel_samples, sampler=sampler, sampler_steps=sampler_steps,
            scaling=scaling)
        self.lr, self.weight_decay, self.batch_size = cfg.lr, cfg.weight_decay, batch_size
        self.num_batches_per_epoch, self.seed, self.device = num_batches_per_epoch, seed, device

    # -------------------------------------------------------- GluonTS hooks
    def _checker(self) -> CheckMultivariate:
        return CheckMultivariate(self.target_dim, self.freq, self.context_length + self.prediction_length,
                                 self.context_length)

    def create_transformation(self) -> Chain:
        """GluonTS hook: check the entries, then add the observed mask, time and age features."""
        return Chain([
            self._checker(),
            AsNumpyArray(field=FieldName.TARGET, expected_ndim=2),
            AddObservedValuesIndicator(target_field=FieldName.TARGET, output_field=FieldName.OBSERVED_VALUES),
            AddTimeFeatures(start_field=FieldName.START, target_field=FieldName.TARGET,
                            output_field=FieldName.FEAT_TIME, time_features=self.time_features,
                            pred_length=self.prediction_length),
            AddAgeFeature(target_field=FieldName.TARGET, output_field=FieldName.FEAT_AGE,
                          pred_length=self.prediction_length, log_scale=True),
            VstackFeatures(output_field=FieldName.FEAT_TIME, input_fields=[FieldName.FEAT_TIME, FieldName.FEAT_AGE]),
        ])

    def _splitter(self, mode: str) -> InstanceSplitter:
        sampler = {"training": ExpectedNumInstanceSampler(num_instances=1.0, min_past=self.context_length,
                                                          min_future=self.prediction_length),
                   "validation": ValidationSplitSampler(min_future=self.prediction_length),
                   "test": TestSplitSampler()}[mode]
        return InstanceSplitter(
            target_field=FieldName.TARGET, is_pad_field=FieldName.IS_PAD, start_field=FieldName.START,
            forecast_start_field=FieldName.FORECAST_START, instance_sampler=sampler,
            past_length=self.context_length + max(self.lags_seq), future_length=self.prediction_length,
            time_series_fields=[FieldName.FEAT_TIME, FieldName.OBSERVED_VALUES])

    def create_lightning_module(self) -> TimeGradLightningModule:
        """GluonTS hook: a fresh :class:`TimeGradLightningModule` with this estimator's settings."""
        return TimeGradLightningModule(model_kwargs=self.model_kwargs, lr=self.lr, weight_decay=self.weight_decay)

    def create_training_data_loader(self, data, module, shuffle_buffer_length=None, **kwargs):
        """GluonTS hook: ``num_batches_per_epoch`` stacked batches of random training windows per epoch."""
        instances = self._splitter("training").apply(Cyclic(data).stream(), is_train=True)
        return as_stacked_batches(instances, batch_size=self.batch_size, shuffle_buffer_length=shuffle_buffer_length,
                                  field_names=TRAINING_INPUT_NAMES, output_type=torch.tensor,
                                  num_batches_per_epoch=self.num_batches_per_epoch)

    def create_validation_data_loader(self, data, module, **kwargs):
        """GluonTS hook: the last window of each validation entry, stacked in batches."""
        instances = self._splitter("validation").apply(data, is_train=True)
        return as_stacked_batches(instances, batch_size=self.batch_size, field_names=TRAINING_INPUT_NAMES,
                                  output_type=torch.tensor)

    def create_predictor(self, transformation, module) -> TimeGradPredictor:
        """GluonTS hook: a :class:`TimeGradPredictor` over the trained ``module``."""
        return TimeGradPredictor(
            input_transform=transformation + self._splitter("test"), input_names=PREDICTION_INPUT_NAMES,
            prediction_net=module, batch_size=self.batch_size, prediction_length=self.prediction_length,
            device=str(resolve_device(self.device)))

    def train_model(self, training_data, validation_data=None, from_predictor=None, shuffle_buffer_length=None,
                    cache_data: bool = False, ckpt_path=None, **kwargs) -> TrainOutput:
        """GluonTS' ``PyTorchLightningEstimator.train_model`` with the best epoch's weights kept in
        memory (:class:`_BestWeights`) instead of a verbose ``ModelCheckpoint`` file, and
        Lightning's console output only with ``verbose=True``."""
        transformation = self.create_transformation()
        with env._let(max_idle_transforms=max(len(training_data), 100)):
            train_data = transformation.apply(training_data, is_train=True)
            if cache_data:
                train_data = Cached(train_data)
            module = self.create_lightning_module()
            train_loader = self.create_training_data_loader(train_data, module,
                                                            shuffle_buffer_length=shuffle_buffer_length)
        val_loader = None
        if validation_data is not None:
            with env._let(max_idle_transforms=max(len(validation_data), 100)):
                val_data = transformation.apply(validation_data, is_train=True)
                if cache_data:
                    val_data = Cached(val_data)
                val_loader = self.create_validation_data_loader(val_data, module)
        if from_predictor is not None:
            module.load_state_dict(from_predictor.network.state_dict())
        best = _BestWeights("train_loss" if validation_data is None else "val_loss")
        kwargs = dict(self.trainer_kwargs)
        callbacks = [best] + list(kwargs.pop("callbacks", None) or [])
        with _lightning_output(self.verbose):
            trainer = pl.Trainer(**{"accelerator": "auto", **kwargs, "callbacks": callbacks})
            try:
                trainer.fit(model=module, train_dataloaders=train_loader, val_dataloaders=val_loader,
                            ckpt_path=ckpt_path)
            except Exception as err:
                if best.state is None:
                    raise
                warnings.warn(f"training failed ({type(err).__name__}: {err}); using the weights of the best "
                              "epoch before the failure", RuntimeWarning, stacklevel=2)
        if best.state is not None:
            module.load_state_dict(best.state)
        return TrainOutput(transformation=transformation, trained_net=module, trainer=trainer,
                           predictor=self.create_predictor(transformation, module))

    def train(self, training_data, validation_data=None, shuffle_buffer_length=None, cache_data: bool = True,
              ckpt_path=None, **kwargs) -> TimeGradPredictor:
        """Train on a multivariate GluonTS dataset; returns a :class:`TimeGradPredictor`.

        Nothing is written to disk by default. Lightning's ``default_root_dir`` is a temporary
        folder, removed after training, unless ``trainer_kwargs["default_root_dir"]`` is set (for
        checkpoints you ask for with ``trainer_kwargs={"enable_checkpointing": True}`` or
        ``callbacks=[ModelCheckpoint(...)]``). With ``seed``, training is reproducible and the
        caller's global generators (Python, NumPy, torch) are left as they were
        (:func:`multidiff.core.device.seeded`). A series far from zero (``1e9 + a random walk``)
        trains around its float64 level (:func:`~multidiff.datasets.gluonts_adapters.shift_to_level`)
        so that float32 keeps its steps.
        """
        check_dataset(training_data)
        if validation_data is not None:
            check_dataset(validation_data, "validation_data")
        for entry in self._checker().apply(training_data, is_train=True):  # errors and warnings before Lightning
            shift_to_level(entry, self.context_length, stacklevel=3)
        training_data = LevelShifted(training_data, self.context_length)
        if validation_data is not None:
            validation_data = LevelShifted(validation_data, self.context_length)
        saved = dict(self.trainer_kwargs)  # train_model pops "callbacks"
        try:
            with seeded(self.seed), tempfile.TemporaryDirectory(prefix="timegrad-") as tmp:
                self.trainer_kwargs.setdefault("default_root_dir", tmp)
                return self.train_model(training_data, validation_data, shuffle_buffer_length=shuffle_buffer_length,
                                        cache_data=cache_data, ckpt_path=ckpt_path).predictor
        finally:
            self.trainer_kwargs = saved


# GluonTS' @validated model reads the annotations as strings (``from __future__ import annotations``)
TimeGradEstimator.__init__.Model.update_forward_refs(TrainConfig=TrainConfig)
