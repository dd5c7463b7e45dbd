"""The public imputation API: :class:`Imputer` (scikit-learn transformer) and :func:`impute`.

CSDI (Tashiro et al., NeurIPS 2021): a conditional diffusion model over (features x time)
windows, trained self-supervised on the observed values; imputations are samples from the
conditional distribution, the point estimate is their median.
"""
from __future__ import annotations

import inspect
import math
import numbers
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.utils.validation import check_array

from ...core.checkpoint import (checkpoint_identity, decode_labels, encode_labels, load_checkpoint,
                                load_state_strict, register_kind, save_checkpoint)
from ...core.device import resolve_device
from ...core import samplers
from ...core.schedules import recorded_schedule
from ...core.task import register_task
from ...core.training import TrainConfig, TrainResult, fit, resolve_train_config
from ...core.validate import check_whole
from ...datasets.frames import NumericFrame, numeric_frame, with_values
from .masks import STRATEGIES
from .model import CSDIModel
from . import network as network_engine
from .selfcheck import check_mask, self_check_report
from .sampling import WindowSampler
from .windows import WindowBatches

__all__ = ["Imputer", "ImputationResult", "impute", "NotFittedError", "DEFAULT_TRAIN_CONFIG"]

# How an Imputer trains unless told otherwise: CSDI's AdamW (lr 1e-3, weight decay 1e-6) with its
# multistep schedule (x0.1 at 75 % and 90 %), clipping at norm 1, no EMA, 1000 epochs, and a
# 120 s budget that makes a default fit finish on a laptop. Imputer(train_config=...) replaces it;
# the Imputer's keywords epochs, max_steps, max_time, patience and ema_decay default to its values (lr to None:
# this rate from scratch, network.FINETUNE_TRAIN_CONFIG's when fine-tuning a pretrained network).
DEFAULT_TRAIN_CONFIG = TrainConfig(epochs=1000, lr=1e-3, weight_decay=1e-6, lr_schedule="multistep", ema_decay=0.0,
                                   grad_clip=1.0, max_time=120.0)
_D = DEFAULT_TRAIN_CONFIG
_TRAIN_KEYWORDS = ("epochs", "max_steps", "lr", "max_time", "patience", "ema_decay")

_MODEL_KEYS = ("num_train_steps", "schedule", "beta_start", "beta_end", "channels", "layers", "heads", "mask_strategy",
               "prediction", "base")
_PREDICTIONS = ("eps", "x0", "v")
_BASES = ("interpolation", None)
_SCHEDULES = ("linear", "quad", "cosine")
KIND, KIND_VERSION = "imputer", 5  # 5: the schedule recorded in the config, no alpha-bar table among the weights
                                  #    (earlier versions are refused: their weights carry that table);
                                  # 4: the parameter pretrained, a network's config and blend weights;
                                  # 3: the parameter num_train_steps; 2: labels encoded by
                                  # core.checkpoint.encode_labels, input columns stored; 1: plain JSON labels
register_kind(KIND, "multidiff.tasks.imputation.Imputer.load(DIR) (command line: multidiff impute --model DIR)")
_CONFIG_KEYS = ("params", "columns", "mean", "std", "low", "high")
# check_array spells "allow NaN" ensure_all_finite from scikit-learn 1.6 on, force_all_finite before
_ALLOW_NAN = {("ensure_all_finite" if "ensure_all_finite" in inspect.signature(check_array).parameters
               else "force_all_finite"): "allow-nan"}


class NotFittedError(_SklearnNotFittedError, RuntimeError):
    """An unfitted :class:`Imputer` was used: scikit-learn's ``NotFittedError``, also a ``RuntimeError``."""


@dataclass
class ImputationResult:
    """What :func:`impute` gives with ``return_result=True``: the filled frame, its quantiles and samples, and
    the self-check."""
    filled: pd.DataFrame                        # input with NaNs of numeric columns replaced by the point estimate
    quantiles: dict = field(default_factory=dict)  # q -> DataFrame (observed values kept as they are)
    samples: Optional[np.ndarray] = None        # (n_samples, rows, numeric columns), when asked for
    imputed_mask: Optional[pd.DataFrame] = None  # True where a value was imputed
    columns: list = field(default_factory=list)  # the numeric columns the samples refer to
    check: Optional[dict] = None                 # the imputer's self-check (MAE of each method on held-out entries)


class Imputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Diffusion imputer for DataFrames (rows = time, columns = features).

    ``pretrained="default"`` starts from the column-agnostic network shipped in the package
    (:mod:`.network`; ``pretrained=DIR`` from another one written by ``save_network``): ``fit``
    fine-tunes it for ``max_time`` seconds (``max_time=0``: no optimiser step, zero-shot), holds
    out observed entries with the data's own missing pattern, and blends linear interpolation,
    the regression of :mod:`.regression` and the network per column by their MAE there (the
    report is ``check_``, and a warning says when the network does not win). Its windows default
    to 64 rows every 16 (each row's estimate averages the windows that hold it); the point
    estimate is the blend, the samples are centred on it. The
    network's size comes from its weights: ``channels``, ``layers``, ``heads``, ``num_train_steps``,
    ``schedule``, ``beta_start``, ``beta_end``, ``mask_strategy``, ``prediction``, ``base``,
    ``context`` and ``clip`` are CSDI's and apply to ``pretrained=None`` only.

    ``pretrained=None`` trains CSDI (Tashiro et al. 2021) from scratch on the frame, as below.
    Parameters mirror CSDI's defaults; ``window`` is the length L of the (K x L) grid and
    ``num_train_steps`` the length of the discrete training schedule (CSDI: 50). Training
    draws all windows with stride ``train_stride`` (1 to ``window``) each epoch, for ``epochs``
    passes, at most ``max_steps`` optimizer steps and ``max_time`` seconds. At ``transform`` time
    windows do not overlap by default (``stride=None`` means ``window``, as CSDI evaluates; the last
    one is aligned to the end); a smaller ``stride`` overlaps them and each row is taken from the
    window it is most central in. ``sampler``/``sampler_steps``: ``"ddim"`` with 10 steps (default)
    scores like CSDI's 50-step ancestral ``"ddpm"`` at a fifth of the cost with v-prediction (see
    docs/imputation.md). ``clip`` clamps the clean values implied at each sampler step to the
    training range of each column widened by ``clip`` times that range (None disables; CSDI
    itself does not clip). ``seed`` fixes the initial weights, the training noise and the
    samples (window ``w`` draws from its own generator, so ``sample_batch_size`` only trades
    memory for speed); the caller's random states are left alone.

    Training settings: ``train_config`` (a :class:`~multidiff.core.training.TrainConfig`; None is
    :data:`DEFAULT_TRAIN_CONFIG`) sets weight decay, clipping, the lr schedule, warm-up and
    precision; ``epochs``, ``max_steps``, ``max_time``, ``patience`` and ``ema_decay`` replace
    its fields when set to other values than their defaults (which are those of
    :data:`DEFAULT_TRAIN_CONFIG`), ``lr`` when not None, and ``seed``, ``device`` and ``progress``
    always do. A pretrained network's base is ``network.FINETUNE_TRAIN_CONFIG`` (lr 1e-4, constant).

    Fitted attributes (scikit-learn conventions): ``columns_`` (the numeric columns imputed),
    ``n_features_in_`` and ``input_columns_`` (all columns seen in fit), ``feature_names_in_``
    (when those are all strings), ``mean_``/``std_`` (per-column normalisation), ``low_``/``high_``
    (normalised training range), ``model_`` and ``train_result_``. A fit that raises leaves them
    as they were.

    The task contract (:mod:`multidiff.core.task`): ``fit(df)``, ``sample(values, n_samples, seed=)``,
    ``save``/``load``, ``kind`` and :meth:`default_train_config`.
    """

    kind = KIND  # the checkpoint kind save() writes and load() reads

    @classmethod
    def default_train_config(cls) -> TrainConfig:
        """:data:`DEFAULT_TRAIN_CONFIG`: what ``fit`` trains with from scratch unless ``train_config=`` replaces it."""
        return DEFAULT_TRAIN_CONFIG

    def __init__(self, window: Optional[int] = None, stride: Optional[int] = None, train_stride: int = 1, epochs: int = _D.epochs,
                 max_steps: Optional[int] = _D.max_steps, batch_size: int = 16, lr: Optional[float] = None,
                 num_train_steps: int = 50, schedule: str = "quad", beta_start: float = 1e-4, beta_end: float = 0.5,
                 channels: int = 32, layers: int = 2, heads: int = 4, mask_strategy: str = "mix",
                 n_samples: int = 20, sampler: str = "ddim", sampler_steps: Optional[int] = 10,
                 sample_batch_size: Optional[int] = None, validation_fraction: float = 0.0, patience: int = _D.patience,
                 ema_decay: float = _D.ema_decay, time_column: Optional[str] = None, device: str = "auto",
                 seed: int = 0, progress: bool = True, checkpoint_dir: Optional[str] = None,
                 clip: Optional[float] = 0.5, max_time: Optional[float] = _D.max_time, prediction: str = "v",
                 base: Optional[str] = "interpolation", context: Optional[int] = None, self_check: float = 0.1,
                 train_config: Optional[TrainConfig] = None, pretrained: Optional[str] = "default"):
        self.window, self.stride, self.train_stride, self.epochs, self.max_steps = window, stride, train_stride, epochs, max_steps
        self.batch_size, self.lr, self.num_train_steps, self.schedule = batch_size, lr, num_train_steps, schedule
        self.beta_start, self.beta_end, self.channels, self.layers, self.heads = beta_start, beta_end, channels, layers, heads
        self.mask_strategy, self.n_samples, self.sampler, self.sampler_steps = mask_strategy, n_samples, sampler, sampler_steps
        self.sample_batch_size, self.validation_fraction, self.patience = sample_batch_size, validation_fraction, patience
        self.ema_decay, self.time_column, self.device, self.seed = ema_decay, time_column, device, seed
        self.progress, self.checkpoint_dir, self.clip, self.max_time = progress, checkpoint_dir, clip, max_time
        self.prediction, self.base, self.context, self.self_check = prediction, base, context, self_check
        self.train_config, self.pretrained = train_config, pretrained

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        """Validate every hyper-parameter, before anything is computed or trained."""
        if self.pretrained is not None and not isinstance(self.pretrained, (str, os.PathLike)):
            raise ValueError(f"pretrained must be 'default' (the network shipped in the package), a folder written by "
                             f"save_network, or None (train CSDI from scratch), got {self.pretrained!r}")
        check_whole("window", self.window, 2, none="64 with a pretrained network, 36 without")
        check_whole("stride", self.stride, 1, self._window(),
                    none="one window" if self.pretrained is None else "a quarter window")
        check_whole("train_stride", self.train_stride, 1, self._window())
        check_whole("epochs", self.epochs, 1)
        check_whole("max_steps", self.max_steps, 1, none="no limit")
        if self.pretrained is not None:  # 0: zero-shot, no optimiser step
            _real("max_time", self.max_time, 0, none="no limit")
        else:
            _real("max_time", self.max_time, 0, low_open=True, none="no limit")
        check_whole("batch_size", self.batch_size, 1)
        _real("lr", self.lr, 0, low_open=True, none="1e-3 from scratch, 1e-4 fine-tuning")
        check_whole("num_train_steps", self.num_train_steps, 1)
        _choice("schedule", self.schedule, _SCHEDULES)
        if self.schedule != "cosine":
            _real("beta_start", self.beta_start, 0, 1, low_open=True)
            _real("beta_end", self.beta_end, self.beta_start, 1)
        for name in ("channels", "layers", "heads"):
            check_whole(name, getattr(self, name), 1)
        if self.channels % self.heads:
            raise ValueError(f"channels ({self.channels}) must be a multiple of heads ({self.heads})")
        _choice("mask_strategy", self.mask_strategy, STRATEGIES)
        check_whole("n_samples", self.n_samples, 1)
        samplers.resolve(self.sampler, "discrete")  # a CSDI model has a discrete schedule
        check_whole("sampler_steps", self.sampler_steps, 1, none="num_train_steps")
        check_whole("sample_batch_size", self.sample_batch_size, 1, none="sized by memory")
        _choice("prediction", self.prediction, _PREDICTIONS)
        _choice("base", self.base, _BASES)
        check_whole("context", self.context, 0, none="one window")
        _real("self_check", self.self_check, 0, 0.5)
        _real("validation_fraction", self.validation_fraction, 0, 1)
        check_whole("patience", self.patience, 0)
        _real("ema_decay", self.ema_decay, 0, 1)
        check_whole("seed", self.seed, 0)
        _real("clip", self.clip, 0, none="no clipping")
        if self.max_time != 0:
            self._train_config().validate()
        resolve_device(self.device)  # e.g. "cuda" without CUDA: fail now, not after the data work

    def _train_config(self) -> TrainConfig:
        """CSDI's DEFAULT_TRAIN_CONFIG from scratch, network.FINETUNE_TRAIN_CONFIG for a pretrained
        network, as replaced by ``train_config`` and the keywords set to other values than their defaults."""
        keywords = {k: getattr(self, k) for k in _TRAIN_KEYWORDS if k != "lr" and getattr(self, k) != getattr(_D, k)}
        if self.lr is not None:  # None: the engine's rate; an explicit one holds for either engine
            keywords["lr"] = self.lr
        base = _D if self.pretrained is None else network_engine.FINETUNE_TRAIN_CONFIG
        return resolve_train_config(base, self.train_config, keywords,
                                    {"seed": self.seed, "progress": self.progress, "device": self.device})

    def _window(self) -> int:
        """Rows per window: ``window``, or 64 (the pretrained network's) / 36 (CSDI's) when None."""
        if self.window is not None:
            return self.window
        return network_engine.WINDOW if self.pretrained is not None else 36

    def _stride(self) -> int:
        """Rows between inference windows: ``stride``, or a quarter window (pretrained) / a window (CSDI)."""
        if self.stride is not None:
            return self.stride
        return max(1, self._window() // 4) if self.pretrained is not None else self._window()

    def _input(self, X, reset: bool) -> pd.DataFrame:
        """``X`` as a DataFrame. Arrays are checked as scikit-learn checks them (dense, 2-D, real,
        NaN allowed); at transform time (``reset=False``) the number of columns and, when fit saw
        string labels, the labels must match fit (scikit-learn's messages)."""
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype=np.float64, **_ALLOW_NAN)
        if not reset:
            names, fitted = _feature_names(X), getattr(self, "feature_names_in_", None)
            name = type(self).__name__
            if names is not None and fitted is None:
                warnings.warn(f"X has feature names, but {name} was fitted without feature names", UserWarning)
            elif names is None and fitted is not None:
                warnings.warn(f"X does not have valid feature names, but {name} was fitted with feature names",
                              UserWarning)
            elif names is not None and (len(names) != len(fitted) or (names != fitted).any()):
                raise ValueError(_names_mismatch(fitted, names))
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting {self.n_features_in_} "
                                 "features as input.")
            if isinstance(X, pd.DataFrame) and fitted is None and list(X.columns) != list(self.input_columns_):
                return X.set_axis(list(self.input_columns_), axis=1)  # no names in fit: columns are positional
        if isinstance(X, pd.DataFrame):
            return X
        return pd.DataFrame(X, columns=list(range(X.shape[1])) if reset else list(self.input_columns_))

    def _frame(self, X, fitting: bool) -> NumericFrame:
        frame = numeric_frame(X, self.time_column, allow_all_nan_columns=not fitting)
        _warn_skipped(frame, stacklevel=4)
        _check_even_spacing(frame)
        if fitting:
            n = len(frame.values)
            if n < self._window() and self.pretrained is None:
                fix = f"pass window=<= {n} (or more rows)" if n >= 2 else "pass at least 2 rows"
                raise ValueError(f"X has {n} sample(s) (rows), fewer than one window of {self._window()}; {fix}")
        else:
            missing = [c for c in self.columns_ if c not in frame.columns]
            extra = [c for c in frame.columns if c not in self.columns_]
            if missing or extra:
                raise ValueError(f"the frame's numeric columns differ from those seen in fit: missing {missing[:5]}, "
                                 f"unexpected {extra[:5]}; pass the same columns, or refit")
            frame.values = frame.values[:, [frame.columns.index(c) for c in self.columns_]]
            frame.columns = list(self.columns_)
        return frame

    # ------------------------------------------------------------------ fit
    def _build_model(self, n_features: int) -> CSDIModel:
        # the initial weights are part of what `seed` makes reproducible; the fork keeps the
        # caller's torch RNG as it was (the model is built on the CPU, so only that one is seeded)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.seed)
            return CSDIModel(n_features, context=self._context(), **{k: getattr(self, k) for k in _MODEL_KEYS})

    def _context(self) -> int:
        """Rows of context on each side of a training window (for the interpolation base only)."""
        if self.base is None:
            return 0
        return self._window() if self.context is None else self.context

    def fit(self, X, y=None):
        """Learn per-column normalisation and train CSDI on the observed values of ``X`` (a DataFrame
        whose non-numeric columns are left alone, or a 2-D array). ``y`` is ignored."""
        self._check_params()
        X = self._input(X, reset=True)
        frame = self._frame(X, fitting=True)
        self._commit(self._train([frame.values], None, list(frame.columns), list(X.columns)))
        return self

    def fit_arrays(self, series: Sequence[np.ndarray], val_series: Optional[Sequence[np.ndarray]] = None,
                   columns: Optional[Sequence] = None):
        """Train on several (rows, K) float arrays with NaN for missing (e.g. one per patient).

        ``columns`` labels the K features (default: ``columns_`` when the caller set it to K
        labels beforehand, else 0..K-1); ``val_series`` are cut into non-overlapping windows for
        the validation loss (early stopping with ``patience``)."""
        self._check_params()
        series = _series(series, "series")
        k = series[0].shape[1]
        val_series = _series(val_series, "val_series", k) if val_series is not None else None
        if columns is None:
            preset = getattr(self, "columns_", None)
            columns = list(preset) if preset is not None and len(preset) == k else list(range(k))
        if len(columns) != k:
            raise ValueError(f"columns has {len(columns)} labels for {k} features")
        self._commit(self._train(series, val_series, list(columns), list(columns)))
        return self

    def _train(self, series: list, val_series: Optional[list], columns: list, input_columns: list) -> dict:
        """Everything a fit learns, as a dict of fitted attributes; ``self`` is not touched, so a
        failure anywhere (bad data, a diverging loss, an interrupt) leaves a fitted imputer intact.

        With ``self_check`` > 0, some observed entries (hidden with the data's own missing
        pattern, see :mod:`.selfcheck`) are kept out of training and imputed afterwards."""
        stacked = np.concatenate(series, axis=0)
        mean = np.nan_to_num(np.nanmean(stacked, axis=0))
        std = np.nan_to_num(np.nanstd(stacked, axis=0))
        std = np.where(std > 0, std, 1.0)
        z = (stacked - mean) / std
        normalised = [((s - mean) / std).astype(np.float32) for s in series]
        common = {"columns_": columns, "mean_": mean, "std_": std, "low_": np.nanmin(z, axis=0),
                  "high_": np.nanmax(z, axis=0), "input_columns_": input_columns}
        if self.pretrained is not None:
            return {**common, **self._train_network(normalised, std, val_series, mean)}
        held = check_mask(normalised, self._window(), self.self_check, self.seed) if self.self_check > 0 else None
        train = normalised if held is None else [np.where(h, np.nan, s) for s, h in zip(normalised, held)]
        windows = lambda data, stride, shuffle, gen=None: WindowBatches(
            data, self._window(), self._context(), stride, self.batch_size, shuffle, gen)
        gen = torch.Generator().manual_seed(self.seed)
        loader = windows(train, self.train_stride, True, gen)
        val_loader = None
        if val_series is not None:
            val_loader = windows([((v - mean) / std).astype(np.float32) for v in val_series], self._window(), False)
            if len(val_loader.starts) == 0:
                raise ValueError(f"no validation window: no window of {self._window()} rows of val_series has two or "
                                 "more observed values; pass longer validation series or none")
        elif self.validation_fraction > 0:
            n_val = max(1, int(len(loader.starts) * self.validation_fraction))
            val_loader = windows(train, self.train_stride, False)
            val_loader.starts = loader.starts[-n_val:]  # the latest windows: no look-ahead into train
            loader.starts = loader.starts[:-n_val]
        if len(loader.starts) == 0:
            raise ValueError(f"no training window: no window of {self._window()} rows (stride {self.train_stride}) "
                             "has two or more observed values"
                             + (f" once validation_fraction={self.validation_fraction} is held out; lower it"
                                if self.validation_fraction > 0 else "")
                             + "; pass more observed rows or a larger window")
        model = self._build_model(len(columns))
        result: TrainResult = fit(model, lambda m, b: m.loss(b), loader, self._train_config(),
                                  val_batches=val_loader, checkpoint_dir=self.checkpoint_dir)
        model = model.cpu().eval()
        fitted = {**common, "model_": model, "train_result_": result, "check_": None}
        if held is not None and any(h.any() for h in held):
            draws = [self.window_sampler().sample(model, t, min(self.n_samples, 10), self.seed, fitted["low_"],
                                             fitted["high_"], rows=np.flatnonzero(h.any(1))) if h.any() else None
                     for t, h in zip(train, held)]
            fitted["check_"] = self_check_report(normalised, train, held, draws, std)
            if fitted["check_"]["model_mae"] >= fitted["check_"]["interpolation_mae"]:
                warnings.warn(fitted["check_"]["message"], UserWarning, stacklevel=4)
        return fitted

    def _train_network(self, normalised: list, std: np.ndarray, val_series: Optional[list], mean: np.ndarray) -> dict:
        """The pretrained network's fit (:mod:`.network`), columns taken in content order."""
        order = network_engine.content_order(np.concatenate(normalised))
        val = None if val_series is None else [((v - mean) / std)[:, order].astype(np.float32) for v in val_series]
        fitted = network_engine.fit_network(self, [z[:, order] for z in normalised], std[order], val)
        fitted["blend_weights_"] = fitted["blend_weights_"][np.argsort(order)]
        check = fitted["check_"]
        if check is not None and not check["network_wins"]:
            warnings.warn(check["message"], UserWarning, stacklevel=5)
        return fitted

    def _commit(self, fitted: dict) -> None:
        """Set all fitted attributes at once, with scikit-learn's ``n_features_in_`` and
        ``feature_names_in_`` (only when every input column label is a string, else removed)."""
        self.__dict__.update(fitted)
        cols = self.input_columns_
        self.n_features_in_ = len(cols)
        if all(isinstance(c, str) for c in cols):
            self.feature_names_in_ = np.asarray(cols, dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """(rows, K) values in original units (NaN = missing) -> per-column z-scores with the fitted
        ``mean_`` and ``std_``: the units the model and :meth:`window_sampler` work in."""
        return (values - self.mean_) / self.std_

    def numeric_frame(self, X) -> NumericFrame:
        """``X``'s numeric columns as :meth:`impute` reads them, in the order fitted
        (:class:`~multidiff.datasets.frames.NumericFrame`): ``ValueError`` unless they are the numeric
        columns seen in fit (in any order) with evenly spaced timestamps; warns about columns left
        as they are (not numeric). Fill them back with :func:`~multidiff.datasets.frames.with_values`."""
        self._check_fitted()
        return self._frame(X, fitting=False)

    def check_ready(self) -> "Imputer":
        """Raise unless the imputer can sample: :class:`NotFittedError` when not fitted,
        ``ValueError`` for a hyper-parameter set to an invalid value since (``set_params``).
        Returns the imputer."""
        self._check_fitted()
        self._check_params()
        return self

    # ------------------------------------------------------------------ sampling
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("this Imputer is not fitted yet; call fit(df) first or use Imputer.load(path)")

    def sample(self, values: np.ndarray, n_samples: Optional[int] = None, seed: Optional[int] = None) -> np.ndarray:
        """(rows, K) array with NaN -> (n_samples, rows, K) samples in original units (None: the
        imputer's ``n_samples``); observed entries are returned as given (:meth:`impute_array`'s samples).

        Window ``w`` draws all its noise (initial and per step) from its own generator seeded with
        ``(seed, w)`` (None: the imputer's ``seed``), so the samples do not depend on ``sample_batch_size``."""
        return self.impute_array(values, self.n_samples if n_samples is None else n_samples, seed)[1]

    def impute_array(self, values: np.ndarray, n_samples: int,
                     generator_seed: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, K) array with NaN -> ``(point (rows, K), samples (n_samples, rows, K))`` in
        original units, observed entries as given. The point estimate is the median of the samples
        (``pretrained=None``) or the self-checked blend of interpolation, regression and network
        around which the samples are centred (a pretrained network; see :mod:`.network`)."""
        self.check_ready()
        check_whole("n_samples", n_samples, 1)
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.columns_) or len(values) == 0:
            raise ValueError(f"values must be a (rows >= 1, {len(self.columns_)}) array, got shape {values.shape}")
        seed = self.seed if generator_seed is None else generator_seed
        z = self.normalise(values).astype(np.float32)
        missing = np.isnan(values)
        low, high = self.observed_range(z)
        if self.pretrained is not None:
            point, samples = network_engine.impute_series(self, z, n_samples, seed)
            point = np.where(missing, point * self.std_ + self.mean_, values)
        else:
            samples = self.window_sampler().sample(self.model_, z, n_samples, seed, low, high)
            point = None
        samples = np.where(missing[None], samples * self.std_ + self.mean_, values[None])
        return (np.median(samples, axis=0) if point is None else point), samples

    def observed_range(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The range of each column the samples may reach (before ``clip`` widens it): what fit
        saw, widened to the observed values of ``z`` (normalised) so that no imputed value is
        held below or above the values observed around it; warns when those lie far (more than
        the fitted range again) outside what fit saw."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            lo, hi = np.nanmin(z, axis=0), np.nanmax(z, axis=0)
        width = np.maximum(self.high_ - self.low_, 1e-6)
        far = (lo < self.low_ - width) | (hi > self.high_ + width)
        if far.any():
            j = int(np.flatnonzero(far)[0])
            seen = np.array([self.low_[j], self.high_[j]]) * self.std_[j] + self.mean_[j]
            now = np.array([lo[j], hi[j]]) * self.std_[j] + self.mean_[j]
            warnings.warn(f"{int(far.sum())} column(s) hold values far outside what fit saw, e.g. "
                          f"{self.columns_[j]!r}: {now[0]:.4g}..{now[1]:.4g} observed now, {seen[0]:.4g}..{seen[1]:.4g} "
                          "in fit; the imputation follows the observed values but the model extrapolates: refit on "
                          "data like these for trustworthy values", UserWarning, stacklevel=4)
        return np.fmin(self.low_, lo), np.fmax(self.high_, hi)

    def window_sampler(self) -> WindowSampler:
        """The windowed sampler of a CSDI imputer (``pretrained=None``; :mod:`.sampling`) with this
        imputer's window, stride, sampler, sampler steps, clip, base, sample batch size and device:
        what :meth:`impute` samples the fitted ``model_`` with (seeded by ``seed``), and what
        :mod:`.dask` uses to sample a series split across partitions (``segment_overlap``,
        ``sample_segment``). Hyper-parameters are checked by :meth:`check_ready`, not here."""
        return WindowSampler(window=self._window(), stride=self.stride, sampler=self.sampler,
                             sampler_steps=self.sampler_steps, clip=self.clip, base=self.base,
                             sample_batch_size=self.sample_batch_size, device=self.device)

    def impute(self, X, n_samples: Optional[int] = None, quantiles: Sequence[float] = (0.05, 0.5, 0.95),
               return_result: bool = False, return_samples: bool = False):
        """Fill the NaNs of ``X``'s numeric columns with the median of ``n_samples`` draws.

        Returns the filled DataFrame, or an :class:`ImputationResult` with quantile frames (and
        the samples with ``return_samples``) when ``return_result`` is set. ``X`` is not modified.
        """
        self._check_fitted()
        qs = [float(q) for q in quantiles]
        if any(not 0 <= q <= 1 for q in qs):
            raise ValueError(f"quantiles must lie in [0, 1], got {list(quantiles)}")
        n = self.n_samples if n_samples is None else n_samples
        check_whole("n_samples", n, 1)
        frame = self._frame(X, fitting=False)
        missing = np.isnan(frame.values)
        empty = [c for c, m in zip(frame.columns, missing.all(0)) if m]
        if empty and len(frame.values):
            warnings.warn(f"{len(empty)} column(s) have no observed value in this frame ({empty[:5]}): their values are "
                          "guessed from the other columns and the mean seen in fit alone; check the input or drop them",
                          UserWarning, stacklevel=2)
        if not missing.any():
            point, samples = frame.values, np.broadcast_to(frame.values, (n,) + frame.values.shape)
        else:
            point, samples = self.impute_array(frame.values, n)
        filled = with_values(X, frame, point)
        if not return_result:
            return filled
        quant = {q: with_values(X, frame, np.quantile(samples, q, axis=0)) for q in qs}
        mask = pd.DataFrame(False, index=X.index, columns=X.columns)
        mask[frame.columns] = missing
        return ImputationResult(filled=filled, quantiles=quant, samples=np.array(samples) if return_samples else None,
                                imputed_mask=mask, columns=list(frame.columns), check=getattr(self, "check_", None))

    def transform(self, X):
        """scikit-learn API: ``X`` with the NaNs of its numeric columns filled by :meth:`impute`.

        A DataFrame in gives a DataFrame out, an array in an array out (``set_output(transform=
        "pandas")`` makes both DataFrames). Unlike :meth:`impute`, ``X`` must have exactly the
        columns seen in fit (scikit-learn's feature checks)."""
        self._check_fitted()
        out = self.impute(self._input(X, reset=False))
        return out.set_axis(X.columns, axis=1) if isinstance(X, pd.DataFrame) else out.to_numpy(dtype=np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # scikit-learn >= 1.6
        tags.input_tags.allow_nan = True  # NaNs are what it fills
        return tags

    def _more_tags(self) -> dict:  # the same for scikit-learn < 1.6
        return {"allow_nan": True}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted imputer to ``path`` (safetensors weights + JSON config), atomically.
        Column labels may be str, int, float, bool, None or tuples of those (MultiIndex)."""
        self._check_fitted()
        params = self.get_params()
        if params["train_config"] is not None:
            params["train_config"] = asdict(params["train_config"])
        config = {"params": params, "columns": encode_labels(self.columns_),
                  "input_columns": encode_labels(self.input_columns_), "mean": self.mean_.tolist(),
                  "std": self.std_.tolist(), "low": self.low_.tolist(), "high": self.high_.tolist()}
        if self.pretrained is not None:
            params["pretrained"] = str(params["pretrained"])
            config.update(network=self.model_.config, blend_weights=self.blend_weights_.tolist(), check=self.check_)
        config["schedule"] = self.model_.schedule.to_config()
        return save_checkpoint(path, {"model": self.model_.state_dict()}, config, kind=KIND, kind_version=KIND_VERSION)

    @classmethod
    def load(cls, path: str | os.PathLike, device: Optional[str] = None) -> "Imputer":
        """Read an imputer written by :meth:`save` (kind ``"imputer"``, version 5);
        ``device`` overrides the saved one. A checkpoint that does not match raises ``ValueError``
        (:class:`~multidiff.core.checkpoint.CheckpointKindError` for another kind of checkpoint)."""
        states, config = load_checkpoint(path, kind=KIND, max_kind_version=KIND_VERSION)
        version = checkpoint_identity(path)[1]
        if version < KIND_VERSION:
            raise ValueError(f"{path} holds an imputer of version {version}, written by an earlier multidiff before "
                             f"the schedule was recorded (this one reads version {KIND_VERSION}): fit it again and save it")
        if not isinstance(config, dict):
            raise ValueError(f"the config.json of {path} holds no config object; save it again from a fitted Imputer")
        missing = [k for k in _CONFIG_KEYS + ("input_columns",) if k not in config]
        if missing:
            raise ValueError(f"the config.json of {path} lacks the keys {missing}: the checkpoint is incomplete or "
                             "was not written by Imputer.save; save it again from a fitted Imputer")
        params = config["params"]
        unknown = sorted(set(params) - set(cls._get_param_names())) if isinstance(params, dict) else ["?"]
        if unknown:
            raise ValueError(f"{path} has parameters this Imputer does not know ({unknown[:5]}): it was written by "
                             "another multidiff version; load it with that version")
        if isinstance(params.get("train_config"), dict):
            params = {**params, "train_config": TrainConfig(**params["train_config"])}
        imp = cls(**params)
        if device is not None:
            imp.device = device
        imp._check_params()
        columns, input_columns = decode_labels(config["columns"]), decode_labels(config["input_columns"])
        arrays = {k: np.asarray(config[k], dtype=np.float64) for k in ("mean", "std", "low", "high")}
        bad = [k for k, a in arrays.items() if a.shape != (len(columns),)]
        if bad or "model" not in states:
            raise ValueError(f"{path} is inconsistent: {bad or 'no model weights'} do not match its {len(columns)} "
                             "columns; save it again from a fitted Imputer")
        fitted = {"columns_": columns, "mean_": arrays["mean"], "std_": arrays["std"], "low_": arrays["low"],
                  "high_": arrays["high"], "input_columns_": input_columns}
        if imp.pretrained is None:
            model = imp._build_model(len(columns))
        else:
            weights = np.asarray(config.get("blend_weights"), dtype=np.float64)
            if not isinstance(config.get("network"), dict) or weights.shape != (len(columns), 3):
                raise ValueError(f"{path} lacks its network config or blend weights for {len(columns)} columns; save it "
                                 "again from a fitted Imputer")
            try:
                model = network_engine.ColumnAgnosticModel(**config["network"])
            except TypeError as e:
                raise ValueError(f"{path} has a network config this multidiff does not know ({e})") from None
            fitted.update(blend_weights_=weights, check_=config.get("check"))
        model.schedule = recorded_schedule(config, model.schedule, f"checkpoint {path}")
        fitted["model_"] = load_state_strict(model, states["model"], f"checkpoint {path}").eval()
        imp._commit(fitted)
        return imp


register_task(Imputer)


def _real(name: str, value, low: float, high: float = math.inf, low_open: bool = False,
          none: Optional[str] = None) -> None:
    """Raise unless ``value`` is a number in [low, high) ((low, high) with ``low_open``)."""
    if none is not None and value is None:
        return
    if (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            and (value > low if low_open else value >= low) and value < high):
        return
    span = f"{'(' if low_open else '['}{low}, {high})"
    allowed = f"None ({none}) or a number" if none is not None else "a number"
    raise ValueError(f"{name} must be {allowed} in {span}, got {value!r}")


def _choice(name: str, value, choices: Sequence) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def _series(series, what: str, k: Optional[int] = None) -> list:
    """``series`` as a non-empty list of (rows >= 1, K) float arrays with one K."""
    arrays = [np.asarray(s, dtype=np.float64) for s in series]
    if not arrays or any(a.ndim != 2 or len(a) == 0 for a in arrays):
        raise ValueError(f"{what} must be a non-empty list of (rows >= 1, features) arrays")
    k = arrays[0].shape[1] if k is None else k
    if any(a.shape[1] != k for a in arrays):
        raise ValueError(f"every array of {what} must have {k} features (columns), got "
                         f"{sorted({a.shape[1] for a in arrays})}")
    if any(np.isinf(a).any() for a in arrays):
        raise ValueError(f"{what} contain inf; replace it with NaN to have it imputed")
    return arrays


def _feature_names(X) -> Optional[np.ndarray]:
    """The column labels of a DataFrame whose labels are all strings (scikit-learn's feature
    names), else None. Unlike scikit-learn, mixed label types are not an error here."""
    if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
        return np.asarray(X.columns, dtype=object)
    return None


def _names_mismatch(fitted: np.ndarray, names: np.ndarray) -> str:
    """scikit-learn's message for feature names that differ from those seen in fit."""
    unexpected, missing = sorted(set(names) - set(fitted)), sorted(set(fitted) - set(names))
    listed = lambda ns: "".join(f"- {n}\n" for n in ns[:5]) + ("- ...\n" if len(ns) > 5 else "")
    message = "The feature names should match those that were passed during fit.\n"
    if unexpected:
        message += "Feature names unseen at fit time:\n" + listed(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listed(missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    return message


SKIPPED = "are not numeric and are left as they are"  # the words of the warning about such columns


def _check_even_spacing(frame: NumericFrame) -> None:
    """Refuse timestamps that are not evenly spaced: the imputation works by row position, so a
    stretch of time without rows would be bridged as one step (a silent wrong answer)."""
    t = frame.time
    if t is None or len(t) < 3:
        return
    steps = np.diff(t.asi8)
    if (steps == steps[0]).all() or pd.infer_freq(t) is not None:  # calendar frequencies (months...) included
        return
    i = int(np.argmax(steps))
    short, long = pd.Timedelta(int(steps.min()), "ns"), pd.Timedelta(int(steps[i]), "ns")
    raise ValueError(f"the rows are not evenly spaced in time (steps from {short} to {long}, the longest between "
                     f"{t[i]} and {t[i + 1]}): multidiff imputes by row position, so a stretch of time without rows "
                     "would be bridged as one step. Put the frame on a regular grid first, e.g. "
                     "df.resample('1h').mean() (the new rows are imputed too), or drop the timestamps "
                     "(df.reset_index(drop=True)) to impute by position on purpose")


def _warn_skipped(frame: NumericFrame, stacklevel: int) -> None:
    """Say which columns are not imputed because they hold no numbers (the time column aside)."""
    skipped = [c for c in frame.skipped if c != frame.time_column]
    if skipped:
        warnings.warn(f"columns {skipped[:10]}{' ...' if len(skipped) > 10 else ''} {SKIPPED} (not imputed); "
                      "convert them to numbers to have them imputed", UserWarning, stacklevel=stacklevel)


def impute(df: pd.DataFrame, n_samples: int = 20, quantiles: Sequence[float] = (0.05, 0.5, 0.95),
           return_result: bool = False, return_samples: bool = True, **imputer_params):
    """Fit an imputer on ``df`` itself and fill its NaNs (self-supervised on observed values).

    ``imputer_params`` go to :class:`Imputer` (e.g. ``max_time``, ``window``, ``device``). By
    default the pretrained network shipped in the package is fine-tuned on ``df`` for
    ``max_time=120`` seconds (``max_time=0``: zero-shot, seconds), and the self-check (interpolation,
    regression, network and their per-column blend on held-out entries of ``df``) is in
    ``result.check``, with a warning when the network does not win; ``pretrained=None`` trains
    CSDI from scratch. See docs/imputation.md for speed and quality.
    """
    imputer_params.setdefault("progress", False)
    imp = Imputer(n_samples=n_samples, **imputer_params)
    frame = numeric_frame(df, imp.time_column)
    _warn_skipped(frame, stacklevel=3)
    if not np.isnan(frame.values).any() and not return_result:
        return df.copy()  # nothing to fill: no training needed
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{SKIPPED}", category=UserWarning)  # said once above
        imp.fit(df)
        return imp.impute(df, n_samples=n_samples, quantiles=quantiles, return_result=return_result,
                          return_samples=return_samples)
