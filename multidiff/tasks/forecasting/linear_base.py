"""The linear base forecast of CSDI forecasting: a direct multi-output ridge per series on its
last ``lags`` context values (DLinear, Zeng et al. AAAI 2023, showed that one linear layer on
the lags beats many deep forecasters), fitted in closed form on the model's standardised
training windows, its penalty chosen by exact leave-one-out error.

The diffusion runs around it; its leave-one-out residuals, kept as whole (series x horizon)
windows, are the spread of a forecast made without any training step (``max_time=0``): a
residual bootstrap that keeps the errors' correlation across series and steps.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["ALPHAS", "ridge_loo", "fit_linear_base"]

ALPHAS = np.logspace(-3, 4, 15)  # ridge penalties tried, times the number of windows


def ridge_loo(x: np.ndarray, y: np.ndarray, alphas=ALPHAS) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Ridge of ``y`` (N, H) on ``x`` (N, p) with an intercept, the penalty ``alpha * N`` with
    ``alpha`` from ``alphas`` that minimises the exact leave-one-out squared error (the hat
    matrix's diagonal, as scikit-learn's ``RidgeCV``): ``(weights (H, p), bias (H,), leave-one-out
    residuals (N, H), alpha)``."""
    n = x.shape[0]
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    e, v = np.linalg.eigh(xc.T @ xc)                       # the Gram matrix's eigenbasis: (p, p) work
    e = np.clip(e, 0, None)
    xv = xc @ v
    c = xv.T @ yc                                          # (p, H)
    best = None
    for alpha in alphas:
        inv = 1.0 / (e + alpha * n)
        fitted = xv @ (c * inv[:, None])
        hat = (xv ** 2) @ inv + 1.0 / n                    # the intercept's share included
        loo = (yc - fitted) / np.clip(1 - hat, 1e-6, None)[:, None]
        err = float((loo ** 2).mean())
        if best is None or err < best[0]:
            best = (err, alpha, inv, loo)
    _, alpha, inv, loo = best
    weights = (v @ (c * inv[:, None])).T                    # (H, p)
    return weights, ym - weights @ xm, loo, float(alpha)


def fit_linear_base(x: torch.Tensor, y: torch.Tensor, horizon_observed: torch.Tensor, max_residuals: int = 256,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit the linear base on training windows: ``x`` (N, D, lags) the standardised past values
    (interpolated through gaps), ``y`` (N, D, H) the standardised horizon, ``horizon_observed``
    (N, D, H) which horizon entries are real: one ridge per series, on the windows whose horizon
    is fully observed for that series. Returns ``(weights (D, H, lags),
    bias (D, H), residuals (R, D, H))``: the leave-one-out residuals of up to ``max_residuals``
    windows whose horizon is whole for at least 90 % of the series (a series missing in one takes
    its residuals from another window), drawn with a generator seeded by ``seed``. A series with
    too few whole windows to fit keeps weights 0 and bias 0: its base is its context mean."""
    n, d, lags = x.shape
    h = y.shape[-1]
    x_all, y_all = x.double().numpy(), y.double().numpy()
    full = horizon_observed.bool().all(-1).numpy()                          # (N, D)
    weights, bias = np.zeros((d, h, lags)), np.zeros((d, h))
    loo = np.zeros((n, d, h))
    for j in range(d):
        rows = np.flatnonzero(full[:, j])
        if len(rows) < max(8, lags // 4):
            continue
        weights[j], bias[j], loo[rows, j], _ = ridge_loo(x_all[rows, j], y_all[rows, j])
    rng = np.random.default_rng(seed)
    # windows observed for most series; a series missing in one borrows its residuals from another
    # window where it was observed (gappy data, e.g. PM2.5 stations, rarely has every series whole)
    share = full.mean(1)
    complete = np.flatnonzero(share >= min(0.9, share.max())) if share.max() > 0 else np.zeros(0, int)
    if len(complete) > max_residuals:
        complete = np.sort(rng.choice(complete, max_residuals, replace=False))
    residuals = loo[complete] if len(complete) else np.zeros((1, d, h))
    for r, w in enumerate(complete):
        for j in np.flatnonzero(~full[w]):
            seen = np.flatnonzero(full[:, j])
            if len(seen):
                residuals[r, j] = loo[rng.choice(seen), j]
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return as_t(weights), as_t(bias), as_t(residuals)
