"""Imputation metrics on an evaluation mask, as CSDI computes them (Tashiro et al. 2021).

All functions take ``target`` (...), ``eval_mask`` (...) of the same shape and either a
point estimate (...) or samples (S, ...). Entries outside the mask are ignored, NaN included.
"""
from __future__ import annotations

import numpy as np

__all__ = ["masked_mae", "masked_rmse", "crps_quantile", "CSDI_QUANTILES"]

CSDI_QUANTILES = np.arange(1, 20) / 20  # 0.05, 0.10, ..., 0.95


def _prep(target, eval_mask):
    mask = np.asarray(eval_mask, dtype=bool)
    if mask.shape != np.shape(target):
        raise ValueError(f"eval_mask shape {mask.shape} differs from target shape {np.shape(target)}")
    if not mask.any():
        raise ValueError("eval_mask selects no entries; nothing to evaluate")
    return np.where(mask, np.asarray(target, dtype=np.float64), 0.0), mask


def masked_mae(point, target, eval_mask) -> float:
    """Mean absolute error over the masked entries."""
    t, m = _prep(target, eval_mask)
    return float(np.abs(np.where(m, point, 0.0) - t).sum() / m.sum())


def masked_rmse(point, target, eval_mask) -> float:
    """Root mean squared error over the masked entries."""
    t, m = _prep(target, eval_mask)
    return float(np.sqrt(((np.where(m, point, 0.0) - t) ** 2).sum() / m.sum()))


def crps_quantile(samples, target, eval_mask, quantiles=CSDI_QUANTILES) -> float:
    """CRPS approximated by the quantile (pinball) losses at 19 levels, normalised by
    ``sum |target|`` over the mask: CSDI's ``calc_quantile_CRPS``. Quantiles of the samples use
    linear interpolation, as ``torch.quantile``."""
    t, m = _prep(target, eval_mask)
    samples = np.asarray(samples, dtype=np.float64)
    if samples.shape[1:] != t.shape:
        raise ValueError(f"samples must have shape (S, {t.shape}), got {samples.shape}")
    denom = np.abs(t).sum()
    if denom == 0:
        raise ValueError("sum |target| over the mask is 0, so the normalised CRPS is undefined")
    total = 0.0
    for q in quantiles:
        pred = np.where(m, np.quantile(samples, q, axis=0), 0.0)
        total += 2 * np.abs((pred - t) * ((t <= pred) - q)).sum() / denom
    return float(total / len(quantiles))
