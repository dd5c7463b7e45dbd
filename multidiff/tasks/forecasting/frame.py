"""The pandas API of the forecasting task: :func:`forecast` trains CSDI forecasting or TimeGrad
on a wide DataFrame (one column per series, rows = regular time steps) and returns quantile
frames (:class:`FrameForecast`)."""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from ...core.validate import check_whole
from ...datasets.gluonts_adapters import frame_index, period_freq, series_level, values_to_dataset
from .csdi import CSDIForecastEstimator, CSDIForecastPredictor
from .timegrad import TimeGradEstimator, TimeGradPredictor

__all__ = ["forecast", "make_estimator", "FrameForecast", "MODELS"]

MODELS = ("csdi", "timegrad")


@dataclass
class FrameForecast:
    """Forecast of a wide frame: quantile frames (rows = future timestamps, columns = series)."""

    quantiles: Dict[float, pd.DataFrame]
    mean: pd.DataFrame
    samples: np.ndarray               # (n_samples, horizon, n_series)
    history: pd.DataFrame = field(repr=False, default=None)

    @classmethod
    def from_samples(cls, samples: np.ndarray, index: pd.DatetimeIndex, columns: Sequence,
                     quantiles: Sequence[float] = (0.1, 0.5, 0.9), history: Optional[pd.DataFrame] = None):
        """A forecast from sample paths (n_samples, horizon, n_series) of any model (e.g. DeepAR's)."""
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 3 or samples.shape[1:] != (len(index), len(columns)):
            raise ValueError(f"samples must have shape (n_samples, {len(index)}, {len(columns)}) for {len(index)} "
                             f"time steps and {len(columns)} series, got {samples.shape}")
        frame = lambda a: pd.DataFrame(a, index=index, columns=list(columns))
        return cls(quantiles={q: frame(np.quantile(samples, q, axis=0)) for q in quantiles},
                   mean=frame(samples.mean(0)), samples=samples, history=history)

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
             freq: Optional[str] = None, time_column: Optional[str] = None, model: str = "csdi",
             max_time: Optional[float] = 40.0, predictor=None, seed: int = 0, progress: bool = False,
             verbose: bool = False, **estimator_kwargs) -> FrameForecast:
    """Train a forecaster on the whole wide frame ``df`` (unless a trained ``predictor`` is given)
    and forecast the next ``horizon`` steps of every column.

    ``model``: ``"csdi"`` (:class:`CSDIForecastEstimator`, the default: one sampling chain for
    the whole horizon) or ``"timegrad"`` (:class:`TimeGradEstimator`); ``estimator_kwargs`` go to
    that estimator. Training stops after ``max_time`` seconds (``None``: the estimator's own
    epoch count); ``max_time=0`` (CSDI) trains nothing: the forecast is the linear base (a ridge
    per series on its last ``context_length`` values, fitted in closed form) plus whole windows of
    its leave-one-out residuals (:mod:`.linear_base`), in about a second. The default 40 s keep the
    whole call under a minute on 2 cores (ETTh1's last 2000 hours: benchmarks/RESULTS.md). Training prints nothing and writes no file; ``progress=True`` shows a progress
    bar, ``verbose=True`` (TimeGrad) all of Lightning's output. Columns that are not numbers are
    left out with a warning naming them (numeric text is converted; text mixing numbers and words
    raises). A column that is entirely NaN raises ``ValueError``; a column with nothing observed in
    the last ``context_length`` rows raises for CSDI (it scales each series by its context) and is
    forecast at the mean scale of the other columns, with a warning, for TimeGrad.

    Calendar frequencies (``"ME"``, ``"MS"``, ``"QE"``, ``"QS"``, ``"YE"``, ``"YS"``, and the older
    ``"M"``) are forecast like any other: the forecast's index continues the frame's in its own
    frequency. The models compute in float32; a column whose level is more than
    ``1e4`` times its step-to-step variation (``1e9 + a random walk``, where float32 would round
    the walk away) is forecast around that level: its float64 mean over the context is subtracted
    before the model sees it and added back to every sample path.
    """
    check_whole("horizon", horizon)
    check_whole("n_samples", n_samples)
    check_whole("seed", seed, 0)
    if not all(0 < q < 1 for q in quantiles):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {list(quantiles)}")
    values, columns, index, freq = frame_index(df, freq, time_column, allow_all_nan_columns=False, stacklevel=3)
    est = None
    if predictor is None:
        with _quiet_period_aliases():
            est = make_estimator(model, period_freq(freq), horizon, len(columns), max_time, seed, progress, verbose,
                                 **estimator_kwargs)
        context_length, kind = est.context_length, model
    else:
        if not isinstance(predictor, (CSDIForecastPredictor, TimeGradPredictor)):
            raise TypeError("predictor must be a trained CSDIForecastPredictor or TimeGradPredictor, got "
                            f"{type(predictor).__name__}")
        kind = "csdi" if isinstance(predictor, CSDIForecastPredictor) else "timegrad"
        dim = predictor.model.net.n_features if kind == "csdi" else predictor.model.target_dim
        if predictor.prediction_length != horizon or dim != len(columns):
            raise ValueError(f"the predictor forecasts {predictor.prediction_length} steps of {dim} series; the "
                             f"frame has {len(columns)} series and horizon={horizon} was asked")
        context_length = predictor.model.context_length
    unseen = [c for c, col in zip(columns, values[-context_length:].T) if np.isnan(col).all()]
    if len(unseen) == len(columns):
        raise ValueError(f"the last {context_length} rows (the context the forecast starts from) are all NaN; "
                         "drop the trailing empty rows or pass a shorter context_length")
    if unseen and kind == "csdi":
        raise ValueError(f"columns {unseen[:10]} have no observed value in the last {context_length} rows (the "
                         "context); CSDI forecasting scales each series by its context: drop them, pass a longer "
                         "context_length, or use model=\"timegrad\"")
    if unseen:
        warnings.warn(f"columns {unseen[:10]} have no observed value in the last {context_length} rows (the "
                      "context); their forecast uses the mean scale of the other columns", UserWarning, stacklevel=2)
    level = series_level(values, context_length)
    with _quiet_period_aliases():
        ds = values_to_dataset(values - level, index, freq)
        if est is not None:
            predictor = est.train(ds)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fc = next(iter(predictor.predict(ds, num_samples=n_samples)))
    future = pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]
    return FrameForecast.from_samples(np.asarray(fc.samples, dtype=np.float64) + level, future, columns, quantiles,
                                      history=pd.DataFrame(values, index=index, columns=columns))


@contextlib.contextmanager
def _quiet_period_aliases():
    """GluonTS dates entries by the period aliases "M", "Q-DEC", "Y-DEC", which pandas 2.2+ flags (read
    as offsets) with the advice to use "ME", "QE": advice for GluonTS, not for the user, whose frame did."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"'\w+(-\w+)?' is deprecated and will be removed",
                                category=FutureWarning)
        yield


def make_estimator(model: str, freq: str, horizon: int, target_dim: int, max_time: Optional[float] = 40.0,
                   seed: int = 0, progress: bool = False, verbose: bool = False, **kwargs):
    """The estimator :func:`forecast` trains: ``model`` ``"csdi"`` or ``"timegrad"`` for ``target_dim``
    series of frequency ``freq``, ``horizon`` steps ahead, trained for ``max_time`` seconds
    (TimeGrad: with no epoch limit then, unless ``epochs`` is given; ``None``: the estimator's
    own epochs); ``kwargs`` are the estimator's (both take the same words: ``epochs``,
    ``num_batches_per_epoch``, ``batch_size``, ``sampler``, ``sampler_steps``, ``train_config`` ...)."""
    if model == "csdi":
        if verbose:
            kwargs = {**kwargs, "progress": True}
        return CSDIForecastEstimator(freq=freq, prediction_length=horizon, target_dim=target_dim, seed=seed,
                                     max_time=max_time, **{"progress": progress, **kwargs})
    if model == "timegrad":
        if max_time == 0:
            raise ValueError("max_time=0 (no training: the linear base and its residuals) is for model='csdi'; "
                             "TimeGrad needs a training budget > 0")
        if max_time is not None:  # the time budget binds, not TimeGrad's 20 epochs
            kwargs = {"epochs": 10**6, **kwargs}
        return TimeGradEstimator(freq=freq, prediction_length=horizon, target_dim=target_dim, seed=seed, max_time=max_time,
                                 progress=progress, verbose=verbose, **kwargs)
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")
