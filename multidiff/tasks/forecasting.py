"""Probabilistic forecasting with TimeGrad (Rasul et al., ICML 2021), native to GluonTS and pandas.

:class:`TimeGradEstimator` is a GluonTS ``PyTorchLightningEstimator``: ``est.train(dataset)``
trains :class:`multidiff.nets.timegrad.TimeGradModel` through a ``lightning.Trainer`` (so
Lightning's devices / strategies apply) on windows cut by GluonTS' ``InstanceSplitter`` and
returns a :class:`TimeGradPredictor` whose ``predict`` yields ``SampleForecast`` objects with
samples (S, H, D). :func:`forecast` does the same for a wide DataFrame and returns quantile
frames; :func:`evaluate` scores a predictor on rolling test windows (CRPS, CRPS-sum, ND, NRMSE-sum).
"""
from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from gluonts.core.component import validated
from gluonts.core.serde import dump_json, load_json
from gluonts.dataset.field_names import FieldName
from gluonts.dataset.loader import as_stacked_batches
from gluonts.itertools import Cyclic, select
from gluonts.time_feature import time_features_from_frequency_str
from gluonts.torch.model.estimator import PyTorchLightningEstimator
from gluonts.torch.model.predictor import PyTorchPredictor
from gluonts.transform import (AddAgeFeature, AddObservedValuesIndicator, AddTimeFeatures, AsNumpyArray, Chain,
                               ExpectedNumInstanceSampler, InstanceSplitter, MapTransformation, TestSplitSampler,
                               ValidationSplitSampler, VstackFeatures)

from ..core.checkpoint import load_checkpoint, save_checkpoint, write_json_atomic, write_text_atomic
from ..core.device import resolve_device, seed_everything
from ..core.validate import check_whole
from ..datasets.gluonts_adapters import frame_index, frame_to_dataset
from ..metrics.forecasting import forecast_metrics
from ..nets.timegrad import SAMPLER_NAMES, TimeGradModel

__all__ = ["TimeGradEstimator", "TimeGradPredictor", "TimeGradLightningModule", "CheckMultivariate",
           "default_lags", "forecast", "FrameForecast", "evaluate"]

# GluonTS builds pd.Period objects; pandas 2.x deprecates them for business days ("B", exchange_rate)
warnings.filterwarnings("ignore", message=r".*(BDay|PeriodDtype\[B\]).*deprecated", category=FutureWarning)

PREDICTION_INPUT_NAMES = ["past_target", "past_observed_values", "past_time_feat", "future_time_feat"]
TRAINING_INPUT_NAMES = PREDICTION_INPUT_NAMES + ["future_target", "future_observed_values"]


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
        if isinstance(start, pd.Period) and start.freq != pd.tseries.frequencies.to_offset(self.freq):
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
        return self.model(*args, **kwargs)

    def _loss(self, batch, name: str):
        loss = self.model.loss(**select(TRAINING_INPUT_NAMES, batch))
        self.log(name, loss, on_epoch=True, on_step=False, prog_bar=False, batch_size=len(batch["past_target"]))
        return loss

    def training_step(self, batch, batch_idx: int):
        return self._loss(batch, "train_loss")

    def validation_step(self, batch, batch_idx: int):
        return self._loss(batch, "val_loss")

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class TimeGradPredictor(PyTorchPredictor):
    """GluonTS predictor whose weights are saved with :mod:`multidiff.core.checkpoint`
    (safetensors + JSON, no pickle); ``gluonts.model.Predictor.deserialize(path)`` reads it back."""

    @property
    def model(self) -> TimeGradModel:
        return self.prediction_net.model

    def set_sampler(self, sampler: str, sampling_steps: Optional[int] = None) -> "TimeGradPredictor":
        """``"ddpm"`` (all 100 steps: TimeGrad), or ``"ddim"`` / ``"dpm_solver"`` with 10-20 steps."""
        self.model.set_sampler(sampler, sampling_steps)
        return self

    def predict(self, dataset, num_samples: Optional[int] = None):
        """Forecasts for each entry; ``num_samples`` paths are drawn in one batched pass per step."""
        model, saved = self.model, self.model.num_parallel_samples
        model.num_parallel_samples = num_samples or saved
        try:
            yield from super().predict(dataset)
        finally:
            model.num_parallel_samples = saved

    def serialize(self, path) -> None:
        import gluonts

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"model": self.__version__, "gluonts": gluonts.__version__,
                "type": f"{type(self).__module__}.{type(self).__qualname__}"}
        write_json_atomic(path / "gluonts-config.json", meta)
        write_text_atomic(path / "predictor.json", dump_json(self))
        sampler = {"sampler": self.model.sampler, "sampling_steps": self.model.sampling_steps}
        save_checkpoint(path / "weights", {"prediction_net": self.prediction_net.state_dict()}, sampler)

    @classmethod
    def deserialize(cls, path, device: Optional[str] = None) -> "TimeGradPredictor":
        path = Path(path)
        predictor = load_json((path / "predictor.json").read_text())
        if not isinstance(predictor, cls):
            raise ValueError(f"{path} holds a {type(predictor).__name__}, not a {cls.__name__}")
        states, config = load_checkpoint(path / "weights")
        predictor.prediction_net.load_state_dict(states["prediction_net"])
        predictor.set_sampler(config["sampler"], config["sampling_steps"])
        return predictor.to(resolve_device(device or "auto"))


class TimeGradEstimator(PyTorchLightningEstimator):
    """TimeGrad estimator (Rasul et al. 2021) for multivariate GluonTS datasets.

    Defaults are TimeGrad's: 2-layer LSTM with 40 cells, context = prediction length, 100
    diffusion steps with linear betas 1e-4..0.1, 8 residual blocks of 8 channels, Adam 1e-3,
    batch 64. ``trainer_kwargs`` go to ``lightning.Trainer`` (``accelerator``, ``devices``,
    ``strategy`` for multi-GPU).
    """

    @validated()
    def __init__(self, freq: Optional[str], prediction_length: int, target_dim: int, context_length: Optional[int] = None,
                 lags_seq: Optional[List[int]] = None, cell_type: str = "lstm", num_layers: int = 2,
                 hidden_size: int = 40, dropout_rate: float = 0.1, diff_steps: int = 100, beta_start: float = 1e-4,
                 beta_end: float = 0.1, residual_layers: int = 8, residual_channels: int = 8,
                 dilation_cycle: int = 2, scaling: bool = True, lr: float = 1e-3, weight_decay: float = 1e-8,
                 batch_size: int = 64, num_batches_per_epoch: int = 100, max_epochs: int = 20,
                 num_parallel_samples: int = 100, sampler: str = "ddpm", sampling_steps: Optional[int] = None,
                 seed: Optional[int] = None, device: str = "auto",
                 trainer_kwargs: Optional[Dict[str, Any]] = None) -> None:
        if not freq:
            raise ValueError("freq is required (e.g. 'h', 'D', 'B'); for a DataFrame, "
                             "multidiff.datasets.gluonts_adapters.frame_to_dataset infers it")
        try:
            freq = pd.tseries.frequencies.to_offset(freq).freqstr
        except ValueError as err:
            raise ValueError(f"freq={freq!r} is not a pandas frequency string (e.g. 'h', 'D', 'B')") from err
        check_whole("prediction_length", prediction_length)
        check_whole("target_dim", target_dim)
        check_whole("context_length", context_length or None, none="prediction_length")  # 0 also means the default
        if sampler not in SAMPLER_NAMES:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLER_NAMES)}, got {sampler!r}")
        accelerator = "cpu" if resolve_device(device).type == "cpu" else "auto"
        kwargs = {"max_epochs": max_epochs, "gradient_clip_val": 10.0, "accelerator": accelerator,
                  "logger": False, "enable_progress_bar": False, "enable_model_summary": False}
        super().__init__(trainer_kwargs={**kwargs, **(trainer_kwargs or {})})
        self.freq, self.prediction_length, self.target_dim = freq, prediction_length, target_dim
        self.context_length = context_length or prediction_length
        self.lags_seq = lags_seq or default_lags(freq)
        self.time_features = time_features_from_frequency_str(freq)
        self.model_kwargs = dict(
            target_dim=target_dim, context_length=self.context_length, prediction_length=prediction_length,
            num_time_features=len(self.time_features) + 1, lags_seq=self.lags_seq, cell_type=cell_type,
            num_layers=num_layers, hidden_size=hidden_size, dropout_rate=dropout_rate, diff_steps=diff_steps,
            beta_start=beta_start, beta_end=beta_end, residual_layers=residual_layers,
            residual_channels=residual_channels, dilation_cycle=dilation_cycle,
            num_parallel_samples=num_parallel_samples, sampler=sampler, sampling_steps=sampling_steps,
            scaling=scaling)
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, batch_size
        self.num_batches_per_epoch, self.seed, self.device = num_batches_per_epoch, seed, device

    # -------------------------------------------------------- GluonTS hooks
    def _checker(self) -> CheckMultivariate:
        return CheckMultivariate(self.target_dim, self.freq, self.context_length + self.prediction_length,
                                 self.context_length)

    def create_transformation(self) -> Chain:
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
        return TimeGradLightningModule(model_kwargs=self.model_kwargs, lr=self.lr, weight_decay=self.weight_decay)

    def create_training_data_loader(self, data, module, shuffle_buffer_length=None, **kwargs):
        instances = self._splitter("training").apply(Cyclic(data).stream(), is_train=True)
        return as_stacked_batches(instances, batch_size=self.batch_size, shuffle_buffer_length=shuffle_buffer_length,
                                  field_names=TRAINING_INPUT_NAMES, output_type=torch.tensor,
                                  num_batches_per_epoch=self.num_batches_per_epoch)

    def create_validation_data_loader(self, data, module, **kwargs):
        instances = self._splitter("validation").apply(data, is_train=True)
        return as_stacked_batches(instances, batch_size=self.batch_size, field_names=TRAINING_INPUT_NAMES,
                                  output_type=torch.tensor)

    def create_predictor(self, transformation, module) -> TimeGradPredictor:
        return TimeGradPredictor(
            input_transform=transformation + self._splitter("test"), input_names=PREDICTION_INPUT_NAMES,
            prediction_net=module, batch_size=self.batch_size, prediction_length=self.prediction_length,
            device=str(resolve_device(self.device)))

    def train(self, training_data, validation_data=None, shuffle_buffer_length=None, cache_data: bool = True,
              ckpt_path=None, **kwargs) -> TimeGradPredictor:
        """Train on a multivariate GluonTS dataset; returns a :class:`TimeGradPredictor`.

        Lightning's best-weights checkpoint goes to a temporary folder unless
        ``trainer_kwargs["default_root_dir"]`` is set.
        """
        if self.seed is not None:
            seed_everything(self.seed)
        for _ in self._checker().apply(training_data, is_train=True):  # errors before Lightning starts
            pass
        saved = dict(self.trainer_kwargs)  # train_model pops "callbacks"
        try:
            with tempfile.TemporaryDirectory(prefix="timegrad-") as tmp:
                self.trainer_kwargs.setdefault("default_root_dir", tmp)
                return self.train_model(training_data, validation_data, shuffle_buffer_length=shuffle_buffer_length,
                                        cache_data=cache_data, ckpt_path=ckpt_path).predictor
        finally:
            self.trainer_kwargs = saved


# ---------------------------------------------------------------- pandas API
@dataclass
class FrameForecast:
    """Forecast of a wide frame: quantile frames (rows = future timestamps, columns = series)."""

    quantiles: Dict[float, pd.DataFrame]
    mean: pd.DataFrame
    samples: np.ndarray               # (n_samples, horizon, n_series)
    history: pd.DataFrame = field(repr=False, default=None)

    def __getitem__(self, q: float) -> pd.DataFrame:
        if q not in self.quantiles:
            raise KeyError(f"quantile {q} was not computed; available: {sorted(self.quantiles)}")
        return self.quantiles[q]

    def to_long(self) -> pd.DataFrame:
        """One row per (timestamp, series): ``mean`` and one column per quantile (``q0.1`` ...)."""
        cols = {"mean": self.mean.stack()}
        cols.update({f"q{q:g}": f.stack() for q, f in sorted(self.quantiles.items())})
        out = pd.DataFrame(cols)
        out.index.names = ["timestamp", "series"]
        return out.reset_index()


def forecast(df: pd.DataFrame, horizon: int, n_samples: int = 100, quantiles: Sequence[float] = (0.1, 0.5, 0.9),
             freq: Optional[str] = None, time_column: Optional[str] = None,
             predictor: Optional[TimeGradPredictor] = None, seed: int = 0, **estimator_kwargs) -> FrameForecast:
    """Train TimeGrad on the whole wide frame ``df`` (unless ``predictor`` is given) and forecast
    the next ``horizon`` steps. ``estimator_kwargs`` go to :class:`TimeGradEstimator`."""
    if not all(0 < q < 1 for q in quantiles):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {list(quantiles)}")
    values, columns, index, freq = frame_index(df, freq, time_column)
    ds, freq = frame_to_dataset(df, freq, time_column)
    if predictor is None:
        est = TimeGradEstimator(freq=freq, prediction_length=horizon, target_dim=len(columns), seed=seed,
                                **estimator_kwargs)
        predictor = est.train(ds)
    elif predictor.prediction_length != horizon or predictor.model.target_dim != len(columns):
        raise ValueError(f"the predictor forecasts {predictor.prediction_length} steps of "
                         f"{predictor.model.target_dim} series; the frame has {len(columns)} series and "
                         f"horizon={horizon} was asked")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fc = next(iter(predictor.predict(ds, num_samples=n_samples)))
    future = pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]
    frame = lambda a: pd.DataFrame(a, index=future, columns=columns)
    samples = np.asarray(fc.samples, dtype=np.float64)
    return FrameForecast(quantiles={q: frame(np.quantile(samples, q, axis=0)) for q in quantiles},
                         mean=frame(samples.mean(0)), samples=samples,
                         history=pd.DataFrame(values, index=index, columns=columns))


def evaluate(predictor, test_ds, num_samples: int = 100, seed: int = 0) -> Dict[str, float]:
    """Score ``predictor`` on the test entries (last ``prediction_length`` of each is the target):
    CRPS, CRPS-sum, ND, NRMSE-sum as TimeGrad reports them, plus sampling time in seconds."""
    from gluonts.evaluation import make_evaluation_predictions

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fc_it, ts_it = make_evaluation_predictions(test_ds, predictor, num_samples=num_samples)
        t0 = time.perf_counter()
        forecasts = list(fc_it)
        seconds = time.perf_counter() - t0
    h = predictor.prediction_length
    targets = np.stack([np.asarray(ts)[-h:] for ts in ts_it])          # (N, H, D)
    samples = np.stack([np.asarray(f.samples) for f in forecasts])     # (N, S, H, D)
    return {**forecast_metrics(samples, targets), "sampling_seconds": seconds}
