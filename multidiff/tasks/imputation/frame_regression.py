"""The regression peer's estimate over a whole frame, batched in torch: an input of the network.

The network sees windows of 64 rows; a linear relation between columns is estimated far better
from the whole frame (thousands of rows) than inside one window. So, before the windows are cut,
each column j gets the estimate of one ridge regression fitted on the frame, and the network
reads it as two more per-cell features (:func:`~.column_model.window_features`): the estimate's
departure from interpolation and the regression's held-out skill for that column.

The regression is the one of :mod:`.regression` (the peer a pipeline user would try first), in a
single fit: the residual of column j over its linear interpolation is regressed on (b) j's
interpolation at t-2..t+2 and the other columns' interpolated values at t, and (a) every other
column's deviation from its own interpolation through j's gaps. It is fitted on ``hide`` of j's
observed entries, hidden again, with the ridge penalty chosen by exact leave-one-out error among
``LAMBDAS`` (or no correction at all). Wide frames use the ``neighbours`` columns whose
interpolated values correlate most with j's.
"""
from __future__ import annotations

from typing import Optional

import torch

from ...core.conditioning import interpolate_masked

__all__ = ["frame_regression", "LAMBDAS", "NEIGHBOURS"]

LAMBDAS = 10.0 ** torch.arange(-4.0, 2.5, 0.5)  # per fitted entry, on features standardised over those entries
NEIGHBOURS = 16
_LAGS = (2, 1, -1, -2)
_MIN_FIT = 10  # fewer hidden-again entries than this: the column keeps interpolation


def _shift(a: torch.Tensor, s: int) -> torch.Tensor:
    """``a`` moved ``s`` steps later (s > 0) or earlier along the last axis, the edge repeated."""
    if s > 0:
        return torch.cat([a[..., :1].expand(*a.shape[:-1], s), a[..., :-s]], dim=-1)
    return torch.cat([a[..., -s:], a[..., -1:].expand(*a.shape[:-1], -s)], dim=-1)


def _neighbours(interp: torch.Tensor, m: int) -> torch.Tensor:
    """(B, K, m) indices of the ``m`` other columns whose interpolated values correlate most
    (in absolute value) with each column's; self excluded (m <= K - 1)."""
    z = interp - interp.mean(-1, keepdim=True)
    z = z / z.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    corr = (z @ z.transpose(1, 2)).abs()
    k = corr.shape[-1]
    corr = corr - 3.0 * torch.eye(k, dtype=corr.dtype)  # self last
    return corr.argsort(dim=-1, descending=True, stable=True)[..., :m]


def _design(values: torch.Tensor, given: torch.Tensor, own: torch.Tensor, others: torch.Tensor,
            idx: torch.Tensor, js: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """For the columns ``js``: each one's interpolation with only ``own`` (B, K, T) of it given,
    and its features (B, J, T, p)."""
    ij = interpolate_masked(values[:, js], own[:, js])
    b, k, t = values.shape
    idx = idx[:, js]
    j, m = idx.shape[1], idx.shape[2]
    gather = lambda a: a[:, None].expand(b, j, k, t).gather(2, idx[..., None].expand(b, j, m, t))  # noqa: E731
    xk, gk = gather(values), gather(given)
    own_j = own[:, js, None]
    through = interpolate_masked(xk, gk & own_j)  # other column k, hidden where j is not given
    dev = torch.where(gk & ~own_j, xk - through, 0.0)
    lags = torch.stack([_shift(ij, s) for s in _LAGS], dim=2)
    return ij, torch.cat([lags, gather(others), dev], dim=2).transpose(2, 3)


def frame_regression(values: torch.Tensor, given: torch.Tensor, generator: Optional[torch.Generator] = None,
                     hide: float = 0.10, neighbours: int = NEIGHBOURS,
                     cells_per_chunk: int = 4_000_000) -> tuple[torch.Tensor, torch.Tensor]:
    """For (B, K, T) frames (``values`` anything where not ``given``): ``(estimate (B, K, T),
    skill (B, K))``. The estimate is the given value where given and interpolation plus the
    fitted correction elsewhere; ``skill`` is 1 - (leave-one-out MSE of the chosen fit) / (MSE of
    interpolation) on the hidden-again entries, 0 where interpolation is kept. Columns are fitted
    in chunks of about ``cells_per_chunk`` feature cells, so memory stays bounded."""
    values = values.to(torch.float32)
    given = given.bool()
    b, k, t = values.shape
    m = min(neighbours, k - 1)
    others = interpolate_masked(values, given)
    idx = _neighbours(others, m) if m > 0 else torch.zeros(b, k, 0, dtype=torch.long)
    extra = given & (torch.rand(values.shape, generator=generator) < hide)
    step = max(1, cells_per_chunk // max(1, b * t * (len(_LAGS) + 2 * m)))
    parts = [_fit(values, given, others, idx, extra, slice(j, min(k, j + step))) for j in range(0, k, step)]
    return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)


def _fit(values, given, others, idx, extra, js: slice):
    """Estimate and skill of the columns ``js`` (see :func:`frame_regression`)."""
    extra_j, given_j, values_j = extra[:, js], given[:, js], values[:, js]
    ij_fit, x_fit = _design(values, given, given & ~extra, others, idx, js)
    w = extra_j.to(values.dtype)[..., None]                     # (B, J, T, 1): rows the fit uses
    n = w.sum(2).clamp(min=1)                                    # (B, J, 1)
    x_mean = (x_fit * w).sum(2) / n                              # (B, J, p)
    y = values_j - ij_fit                                        # residual over interpolation
    y_mean = (y * w[..., 0]).sum(-1, keepdim=True) / n
    xc = (x_fit - x_mean[:, :, None]) * w
    del x_fit
    sd = ((xc ** 2).sum(2) / n).sqrt().clamp(min=1e-6)            # (B, J, p)
    xc = xc / sd[:, :, None]
    yc = (y - y_mean) * w[..., 0]
    e, v = torch.linalg.eigh((xc.transpose(2, 3) @ xc).double())
    e, v = e.clamp(min=0).to(values.dtype), v.to(values.dtype)
    xv = xc @ v                                                  # (B, J, T, p)
    c = (xv * yc[..., None]).sum(2)                              # (B, J, p)
    scale = n                                                    # ridge penalty lam * entries
    total = (yc ** 2).sum(-1) / n[..., 0]
    best_mse, best_coef = total, torch.zeros_like(c)             # no correction: interpolation
    for lam in LAMBDAS.tolist():
        inv = 1.0 / (e + lam * scale)                            # (B, J, p)
        fitted = (xv * (c * inv)[:, :, None]).sum(-1)            # (B, J, T)
        hat = (xv ** 2 * inv[:, :, None]).sum(-1)
        mse = (((yc - fitted) / (1 - hat).clamp(min=1e-3) * w[..., 0]) ** 2).sum(-1) / n[..., 0]
        better = mse < best_mse
        best_mse = torch.where(better, mse, best_mse)
        best_coef = torch.where(better[..., None], c * inv, best_coef)
    usable = (extra_j.sum(-1) >= _MIN_FIT) & (~given_j).any(-1)
    skill = torch.where(usable & (total > 0), 1 - best_mse / total.clamp(min=1e-12), torch.zeros_like(total))
    beta = (v @ best_coef[..., None])[..., 0] / sd * usable[..., None]  # (B, J, p), in the features' units
    ij, x = _design(values, given, given, others, idx, js)
    correction = ((x - x_mean[:, :, None]) * beta[:, :, None]).sum(-1) + y_mean * usable[..., None]
    return torch.where(given_j, values_j, ij + correction), skill.clamp(0, 1)
