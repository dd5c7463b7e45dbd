"""The regression a pipeline user would try first, fitted in about a second (issue 31).

For each column j the residual over j's linear interpolation is fitted with ``RidgeCV`` on one
of two feature sets, trained by hiding ``hide`` of j's observed entries again:

- (a) every other column's deviation from its *own* interpolation through j's gaps (what
  interpolating column k would have missed over the same rows);
- (b) j's interpolation at t-2..t+2 and the other columns' interpolated values at t.

Per column the better of interpolation, (a) and (b) on 2-fold held-out halves of those entries is
kept. Closed form: no optimiser step, so it is part of a zero-shot imputation.
"""
from __future__ import annotations

import numpy as np

from .windows import interpolate_series

__all__ = ["ridge_impute", "ALPHAS"]

ALPHAS = np.logspace(-3, 3, 13)


def _interp(a: np.ndarray) -> np.ndarray:
    """Linear interpolation of each column of a (rows, K) array with NaN (edges held, 0 for a column with none)."""
    return interpolate_series(a.astype(np.float32)).astype(np.float64)


def _shift(a: np.ndarray, s: int) -> np.ndarray:
    """``a`` moved ``s`` rows later (s > 0) or earlier (s < 0), the edge row repeated."""
    if s > 0:
        return np.concatenate([np.repeat(a[:1], s), a[:-s]])
    return np.concatenate([a[-s:], np.repeat(a[-1:], -s)])


def _features(x: np.ndarray, j: int, gaps: np.ndarray, others_interp: np.ndarray):
    """Interpolation of column j with ``gaps`` (bool rows) missing, and both feature sets."""
    xj = np.where(gaps, np.nan, x[:, j])
    ij = _interp(xj[:, None])[:, 0]
    xo = np.delete(x, j, axis=1)
    through = _interp(np.where(gaps[:, None], np.nan, xo))
    dev = np.where(~np.isnan(xo) & gaps[:, None], np.nan_to_num(xo) - through, 0.0)
    fb = np.column_stack([_shift(ij, s) for s in (2, 1, -1, -2)] + [others_interp])
    return ij, dev, fb


def _ridge(features: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import RidgeCV
    return RidgeCV(alphas=ALPHAS).fit(features, y)


def ridge_impute(x: np.ndarray, seed: int = 0, hide: float = 0.10, min_observed: int = 20) -> tuple[np.ndarray, list]:
    """Fill the NaNs of a (rows, K) float array; returns ``(filled, per-column choice)`` with
    choices ``"interpolation"``, ``"a"`` or ``"b"``. Columns with fewer than ``min_observed``
    values, or nothing missing, keep interpolation. Draws from a local generator seeded by ``seed``."""
    x = np.asarray(x, dtype=np.float64)
    n, k = x.shape
    rng = np.random.default_rng(seed)
    interp = _interp(x)
    out = interp.copy()
    choice = []
    for j in range(k):
        miss = np.isnan(x[:, j])
        extra = ~miss & (rng.random(n) < hide)
        rows = np.flatnonzero(extra)
        if not miss.any() or (~miss).sum() < min_observed or len(rows) < 10:
            choice.append("interpolation")
            continue
        others = np.delete(interp, j, axis=1)
        ij_t, dev_t, fb_t = _features(x, j, miss | extra, others)
        y = x[rows, j] - ij_t[rows]
        fold = rng.random(len(rows)) < 0.5
        errs = {"interpolation": 0.0, "a": 0.0, "b": 0.0}
        for tr, te in ((fold, ~fold), (~fold, fold)):
            if tr.sum() < 5 or te.sum() < 1:
                continue
            errs["interpolation"] += np.abs(y[te]).sum()
            for name, f in (("a", dev_t), ("b", fb_t)):
                if f.shape[1] == 0:
                    errs[name] = np.inf
                    continue
                errs[name] += np.abs(y[te] - _ridge(f[rows][tr], y[tr]).predict(f[rows][te])).sum()
        best = min(errs, key=errs.get)
        choice.append(best)
        if best == "interpolation":
            continue
        model = _ridge((dev_t if best == "a" else fb_t)[rows], y)
        ij, dev, fb = _features(x, j, miss, others)
        out[miss, j] = ij[miss] + model.predict((dev if best == "a" else fb)[miss])
    return out, choice
