"""The public imputation API: :class:`Imputer` (scikit-learn transformer) and :func:`impute`.

CSDI (Tashiro et al., NeurIPS 2021): a conditional diffusion model over (features x time)
windows, trained self-supervised on the observed values; imputations are samples from the
conditional distribution, the point estimate is their median.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ...core.checkpoint import load_checkpoint, save_checkpoint
from ...core.device import resolve_device
from ...core.samplers import SAMPLERS
from ...core.training import TrainConfig, TrainResult, fit
from ...datasets.frames import NumericFrame, numeric_frame, with_values
from .masks import STRATEGIES
from .model import CSDIModel
from .windows import stitch, window_starts

__all__ = ["Imputer", "ImputationResult", "impute"]

_MODEL_KEYS = ("num_steps", "schedule", "beta_start", "beta_end", "channels", "layers", "heads", "mask_strategy")


@dataclass
class ImputationResult:
    filled: pd.DataFrame                        # input with NaNs of numeric columns replaced by the median
    quantiles: dict = field(default_factory=dict)  # q -> DataFrame (observed values kept as they are)
    samples: Optional[np.ndarray] = None        # (n_samples, rows, numeric columns), when asked for
    imputed_mask: Optional[pd.DataFrame] = None  # True where a value was imputed
    columns: list = field(default_factory=list)  # the numeric columns the samples refer to


class Imputer(TransformerMixin, BaseEstimator):
    """CSDI imputer for DataFrames (rows = time, columns = features).

    Parameters mirror CSDI's defaults; ``window`` is the length L of the (K x L) grid. Training
    draws all windows with stride ``train_stride`` each epoch. At ``transform`` time windows
    overlap by half (``stride``) and each row is taken from the window it is most central in.
    ``sampler``/``sampler_steps``: ``"ddpm"`` with 50 steps is CSDI's ancestral sampler;
    ``"dpm_solver"`` or ``"ddim"`` with 5-10 steps is 5-10x faster (see docs/imputation.md).
    ``clip`` clamps the clean values implied at each sampler step to the training range of each
    column widened by ``clip`` times that range (None disables; CSDI itself does not clip).
    """

    def __init__(self, window: int = 36, stride: Optional[int] = None, train_stride: int = 1, epochs: int = 200,
                 max_steps: Optional[int] = None, batch_size: int = 16, lr: float = 1e-3,
                 num_steps: int = 50, schedule: str = "quad", beta_start: float = 1e-4, beta_end: float = 0.5,
                 channels: int = 64, layers: int = 4, heads: int = 8, mask_strategy: str = "mix",
                 n_samples: int = 50, sampler: str = "ddpm", sampler_steps: Optional[int] = None,
                 sample_batch_size: int = 256, validation_fraction: float = 0.0, patience: int = 0,
                 ema_decay: float = 0.0, time_column: Optional[str] = None, device: str = "auto",
                 seed: int = 0, progress: bool = True, checkpoint_dir: Optional[str] = None,
                 clip: Optional[float] = 0.5):
        self.window, self.stride, self.train_stride, self.epochs, self.max_steps = window, stride, train_stride, epochs, max_steps
        self.batch_size, self.lr, self.num_steps, self.schedule = batch_size, lr, num_steps, schedule
        self.beta_start, self.beta_end, self.channels, self.layers, self.heads = beta_start, beta_end, channels, layers, heads
        self.mask_strategy, self.n_samples, self.sampler, self.sampler_steps = mask_strategy, n_samples, sampler, sampler_steps
        self.sample_batch_size, self.validation_fraction, self.patience = sample_batch_size, validation_fraction, patience
        self.ema_decay, self.time_column, self.device, self.seed = ema_decay, time_column, device, seed
        self.progress, self.checkpoint_dir, self.clip = progress, checkpoint_dir, clip

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2 time steps, got {self.window}")
        if self.mask_strategy not in STRATEGIES:
            raise ValueError(f"mask_strategy must be one of {STRATEGIES}, got {self.mask_strategy!r}")
        if self.sampler not in SAMPLERS or self.sampler.startswith("euler"):
            raise ValueError(f"sampler must be ddpm, ddim or dpm_solver, got {self.sampler!r}")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must lie in [0, 1), got {self.validation_fraction}")

    def _frame(self, X, fitting: bool) -> NumericFrame:
        frame = numeric_frame(X, self.time_column, allow_all_nan_columns=not fitting)
        if fitting:
            if len(frame.values) < self.window:
                raise ValueError(f"the frame has {len(frame.values)} rows, fewer than one window of {self.window}; "
                                 f"pass window=<= {len(frame.values)} (or more rows)")
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
    def _build_model(self) -> CSDIModel:
        return CSDIModel(len(self.columns_), **{k: getattr(self, k) for k in _MODEL_KEYS})

    def fit(self, X, y=None):
        """Learn per-column normalisation and train CSDI on the observed values of ``X``."""
        self._check_params()
        as_array = not isinstance(X, pd.DataFrame)
        frame = self._frame(pd.DataFrame(X) if as_array and isinstance(X, np.ndarray) else X, fitting=True)
        self.columns_ = list(frame.columns)
        return self.fit_arrays([frame.values])

    def fit_arrays(self, series: Sequence[np.ndarray], val_series: Optional[Sequence[np.ndarray]] = None):
        """Train on several (rows, K) float arrays with NaN for missing (e.g. one per patient)."""
        if not hasattr(self, "columns_"):
            self.columns_ = list(range(series[0].shape[1]))
        self._check_params()
        stacked = np.concatenate(series, axis=0)
        self.mean_ = np.nan_to_num(np.nanmean(stacked, axis=0))
        std = np.nan_to_num(np.nanstd(stacked, axis=0))
        self.std_ = np.where(std > 0, std, 1.0)
        z = self._normalise(stacked)
        self.low_, self.high_ = np.nanmin(z, axis=0), np.nanmax(z, axis=0)
        windows = self._windows(series, self.train_stride)
        val = self._windows(val_series, self.window) if val_series is not None else None
        if val is None and self.validation_fraction > 0:
            n_val = max(1, int(len(windows["values"]) * self.validation_fraction))
            val = {k: v[-n_val:] for k, v in windows.items()}  # the latest windows: no look-ahead into train
            windows = {k: v[:-n_val] for k, v in windows.items()}
        torch.manual_seed(self.seed)  # the initial weights are part of what `seed` makes reproducible
        self.model_ = self._build_model()
        gen = torch.Generator().manual_seed(self.seed)
        loader = _batches(windows, self.batch_size, shuffle=True, generator=gen)
        val_loader = _batches(val, self.batch_size, shuffle=False) if val is not None else None
        cfg = TrainConfig(epochs=self.epochs, lr=self.lr, weight_decay=1e-6, max_steps=self.max_steps,
                          ema_decay=self.ema_decay, patience=self.patience, seed=self.seed,
                          progress=self.progress, device=self.device, grad_clip=1.0)
        self.train_result_: TrainResult = fit(self.model_, lambda m, b: m.loss(b), loader, cfg,
                                              val_batches=val_loader, checkpoint_dir=self.checkpoint_dir)
        self.model_.cpu()
        return self

    def _normalise(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean_) / self.std_

    def _windows(self, series: Sequence[np.ndarray], stride: int) -> dict:
        vals, obs = [], []
        for s in series:
            z = self._normalise(np.asarray(s, dtype=np.float64))
            length = min(self.window, len(z))
            for start in window_starts(len(z), length, stride):
                w = z[start:start + length]
                if len(w) < self.window:  # short series: pad with unobserved rows
                    w = np.vstack([w, np.full((self.window - len(w), w.shape[1]), np.nan)])
                vals.append(np.nan_to_num(w.T))
                obs.append(~np.isnan(w.T))
        if not vals:
            raise ValueError("no training windows: every series is empty")
        obs_arr = np.stack(obs)
        keep = obs_arr.reshape(len(obs_arr), -1).sum(1) > 1  # a window needs something to learn from
        return {"values": torch.tensor(np.stack(vals)[keep], dtype=torch.float32),
                "observed": torch.tensor(obs_arr[keep], dtype=torch.float32)}

    # ------------------------------------------------------------------ sampling
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError("this Imputer is not fitted yet; call fit(df) first or use Imputer.load(path)")

    def sample_array(self, values: np.ndarray, n_samples: int, generator_seed: Optional[int] = None) -> np.ndarray:
        """(rows, K) array with NaN -> (n_samples, rows, K) samples in original units."""
        self._check_fitted()
        device = resolve_device(self.device)
        model = self.model_.to(device).eval()
        n_rows = len(values)
        length = min(self.window, n_rows)
        stride = self.stride or max(1, length // 2)
        starts = window_starts(n_rows, length, stride)
        z = self._normalise(values)
        obs = ~np.isnan(z)
        wv = np.stack([np.nan_to_num(z[s:s + length]).T for s in starts])
        wo = np.stack([obs[s:s + length].T for s in starts])
        gen = torch.Generator(device=device).manual_seed(self.seed if generator_seed is None else generator_seed)
        per_call = max(1, self.sample_batch_size // n_samples)
        bounds = None
        if self.clip is not None:
            width = (self.high_ - self.low_) * self.clip
            bounds = tuple(torch.tensor(b, dtype=torch.float32, device=device)[:, None]
                           for b in (self.low_ - width, self.high_ + width))
        out = []
        for i in range(0, len(starts), per_call):
            v = torch.tensor(wv[i:i + per_call], dtype=torch.float32, device=device)
            m = torch.tensor(wo[i:i + per_call], dtype=torch.float32, device=device)
            pos = torch.arange(length, device=device, dtype=torch.float32).expand(len(v), length)
            s = model.impute(v, m, pos, n_samples, self.sampler, self.sampler_steps, gen, bounds)
            out.append(s.permute(1, 0, 3, 2).float().cpu().numpy())  # (windows, S, L, K)
        samples = stitch(np.concatenate(out), starts, n_rows) * self.std_ + self.mean_
        return np.where(obs[None], values[None], samples)

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
        frame = self._frame(X, fitting=False)
        missing = np.isnan(frame.values)
        n = int(n_samples or self.n_samples)
        if n < 1:
            raise ValueError(f"n_samples must be >= 1, got {n}")
        if not missing.any():
            samples = np.broadcast_to(frame.values, (n,) + frame.values.shape)
        else:
            samples = self.sample_array(frame.values, n)
        filled = with_values(X, frame, np.median(samples, axis=0))
        if not return_result:
            return filled
        quant = {q: with_values(X, frame, np.quantile(samples, q, axis=0)) for q in qs}
        mask = pd.DataFrame(False, index=X.index, columns=X.columns)
        mask[frame.columns] = missing
        return ImputationResult(filled=filled, quantiles=quant, samples=np.array(samples) if return_samples else None,
                                imputed_mask=mask, columns=list(frame.columns))

    def transform(self, X):
        """scikit-learn API: the filled frame (a NumPy array in, a NumPy array out)."""
        if isinstance(X, pd.DataFrame):
            return self.impute(X)
        return self.impute(pd.DataFrame(np.asarray(X, dtype=np.float64))).to_numpy()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted imputer to ``path`` (safetensors weights + JSON config), atomically."""
        self._check_fitted()
        try:
            json.dumps(self.columns_)
        except TypeError as err:
            raise ValueError("column labels must be JSON-serialisable (str/int/float) to save; rename them") from err
        config = {"params": self.get_params(), "columns": self.columns_, "mean": self.mean_.tolist(),
                  "std": self.std_.tolist(), "low": self.low_.tolist(), "high": self.high_.tolist(),
                  "format": "multidiff.Imputer/1"}
        return save_checkpoint(path, {"model": self.model_.state_dict()}, config)

    @classmethod
    def load(cls, path: str | os.PathLike, device: Optional[str] = None) -> "Imputer":
        """Read an imputer written by :meth:`save`."""
        states, config = load_checkpoint(path)
        if config.get("format") != "multidiff.Imputer/1":
            raise ValueError(f"{path} holds a checkpoint of another kind ({config.get('format')!r}), not an Imputer")
        imp = cls(**config["params"])
        if device is not None:
            imp.device = device
        imp.columns_ = config["columns"]
        imp.mean_, imp.std_ = np.array(config["mean"]), np.array(config["std"])
        imp.low_, imp.high_ = np.array(config["low"]), np.array(config["high"])
        imp.model_ = imp._build_model()
        imp.model_.load_state_dict(states["model"])
        imp.model_.eval()
        return imp


class _batches:
    """Re-iterable mini-batches over a dict of equally long tensors (a light DataLoader)."""

    def __init__(self, data: dict, batch_size: int, shuffle: bool, generator: Optional[torch.Generator] = None):
        self.data, self.batch_size, self.shuffle, self.generator = data, batch_size, shuffle, generator
        self.n = len(next(iter(data.values())))
        length = self.data["values"].shape[-1]
        self.positions = torch.arange(length, dtype=torch.float32)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        for i in range(0, self.n, self.batch_size):
            idx = order[i:i + self.batch_size]
            batch = {k: v[idx] for k, v in self.data.items()}
            batch["positions"] = self.positions.expand(len(idx), -1)
            yield batch


def impute(df: pd.DataFrame, n_samples: int = 50, quantiles: Sequence[float] = (0.05, 0.5, 0.95),
           return_result: bool = False, return_samples: bool = True, **imputer_params):
    """Train a CSDI imputer on ``df`` itself and fill its NaNs (self-supervised on observed values).

    ``imputer_params`` go to :class:`Imputer` (e.g. ``epochs``, ``max_steps``, ``window``,
    ``device``). By default training stops after 2000 optimizer steps so that a call on a large
    frame stays bounded; raise ``max_steps`` (or set it to None) for CSDI's full 200 epochs.
    """
    imputer_params.setdefault("max_steps", 2000)
    imputer_params.setdefault("progress", False)
    imp = Imputer(n_samples=n_samples, **imputer_params)
    if not np.isnan(numeric_frame(df, imp.time_column).values).any() and not return_result:
        return df.copy()  # nothing to fill: no training needed
    imp.fit(df)
    return imp.impute(df, n_samples=n_samples, quantiles=quantiles, return_result=return_result,
                      return_samples=return_samples)
