"""Probabilistic forecasting metrics as pure NumPy functions, computed as GluonTS'
``MultivariateEvaluator`` does and TimeGrad (Rasul et al. 2021) reports them.

Shapes: ``samples`` (N, S, H, D) for N forecast windows, S sample paths, H steps, D series;
``targets`` (N, H, D). CRPS is approximated by the mean weighted quantile loss over the
quantiles 0.05, 0.10, ..., 0.95 (``m_mean_wQuantileLoss``); the "-sum" variants score the
sum over the D series (``target_agg_funcs={"sum": np.sum}`` -> ``m_sum_...``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["QUANTILES", "quantile_loss", "crps", "crps_sum", "nd", "nrmse", "nd_sum", "nrmse_sum", "coverage",
           "forecast_metrics"]

QUANTILES = tuple(np.round(np.arange(1, 20) / 20, 2))


def _check(samples: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    samples, targets = np.asarray(samples, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if samples.ndim != targets.ndim + 1 or samples.shape[:1] + samples.shape[2:] != targets.shape:
        raise ValueError(f"samples must be (N, S, H[, D]) for targets (N, H[, D]); got samples {samples.shape} "
                         f"and targets {targets.shape}")
    return samples, targets


def _quantile(samples: np.ndarray, q) -> np.ndarray:
    # GluonTS' SampleForecast.quantile: the sorted sample at index round((S - 1) q), no interpolation
    return np.quantile(samples, q, axis=1, method="nearest")


def quantile_loss(target: np.ndarray, forecast: np.ndarray, q: float) -> float:
    """``2 * sum |(forecast - target) * (1{target <= forecast} - q)|`` (GluonTS' quantile loss)."""
    target, forecast = np.asarray(target, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    return float(2 * np.sum(np.abs((forecast - target) * ((target <= forecast) - q))))


def crps(samples, targets, quantiles: Sequence[float] = QUANTILES) -> float:
    """Mean over quantiles of sum(quantile loss) / sum|target|, pooled over windows, steps and series."""
    samples, targets = _check(samples, targets)
    denom = np.abs(targets).sum()
    qs = _quantile(samples, quantiles)  # (Q, N, H, D)
    return float(np.mean([quantile_loss(targets, f, q) / denom for q, f in zip(quantiles, qs)]))


def crps_sum(samples, targets, quantiles: Sequence[float] = QUANTILES) -> float:
    """CRPS of the sum over series: TimeGrad's headline metric (``m_sum_mean_wQuantileLoss``)."""
    samples, targets = _check(samples, targets)
    return crps(samples.sum(-1), targets.sum(-1), quantiles)


def nd(samples, targets) -> float:
    """Normalised deviation: sum|target - median| / sum|target| (median as GluonTS picks it)."""
    samples, targets = _check(samples, targets)
    return float(np.abs(targets - _quantile(samples, 0.5)).sum() / np.abs(targets).sum())


def nrmse(samples, targets) -> float:
    """RMSE of the sample mean divided by the mean absolute target (GluonTS' NRMSE)."""
    samples, targets = _check(samples, targets)
    return float(np.sqrt(np.mean((targets - samples.mean(1)) ** 2)) / np.abs(targets).mean())


def nd_sum(samples, targets) -> float:
    """:func:`nd` of the sum over series."""
    samples, targets = _check(samples, targets)
    return nd(samples.sum(-1), targets.sum(-1))


def nrmse_sum(samples, targets) -> float:
    """:func:`nrmse` of the sum over series (``m_sum_NRMSE``)."""
    samples, targets = _check(samples, targets)
    return nrmse(samples.sum(-1), targets.sum(-1))


def coverage(samples, targets, q: float) -> float:
    """Fraction of targets at or below the q-quantile of the samples (calibrated: close to q)."""
    samples, targets = _check(samples, targets)
    return float(np.mean(targets <= _quantile(samples, q)))


def forecast_metrics(samples, targets) -> dict[str, float]:
    """The metrics of TimeGrad's tables in one dict."""
    return {"CRPS": crps(samples, targets), "CRPS-sum": crps_sum(samples, targets), "ND": nd(samples, targets),
            "ND-sum": nd_sum(samples, targets), "NRMSE": nrmse(samples, targets),
            "NRMSE-sum": nrmse_sum(samples, targets)}
