"""Choose, per column, how much to trust linear interpolation, the regression and the network.

On entries held out from everything (see :mod:`.selfcheck`), the three estimates are put side
by side and each column gets the convex combination, on a grid of step ``1 / GRID``, with the
smallest MAE (stacking, Wolpert 1992; Breiman 1996). A column with few held-out entries borrows
strength from the others: its score adds the pooled MAE of all columns as ``PRIOR_ENTRIES``
pseudo-entries. Weight 1 on one method is "use that method"; the report says which won.
"""
from __future__ import annotations

import numpy as np

__all__ = ["METHODS", "simplex_grid", "fit_weights", "combine"]

METHODS = ("interpolation", "regression", "network")
GRID = 10
PRIOR_ENTRIES = 50.0


def simplex_grid(n: int = len(METHODS), divisions: int = GRID) -> np.ndarray:
    """All weight vectors of ``n`` non-negative multiples of ``1 / divisions`` that sum to 1."""
    out = []

    def walk(prefix, left):
        if len(prefix) == n - 1:
            out.append(prefix + [left])
            return
        for i in range(left + 1):
            walk(prefix + [i], left - i)

    walk([], divisions)
    return np.asarray(out, dtype=np.float64) / divisions


def fit_weights(truth: np.ndarray, estimates: np.ndarray, column: np.ndarray, k: int) -> tuple[np.ndarray, dict]:
    """Weights (K, 3) from held-out entries: ``truth`` (n,), ``estimates`` (n, 3) in the order of
    :data:`METHODS`, ``column`` (n,) the column of each entry. Returns the weights and a report:
    per method and for the blend, the MAE over all held-out entries (in the units given)."""
    grid = simplex_grid()
    err = np.abs(estimates @ grid.T - truth[:, None])  # (n, combos)
    sums = np.zeros((k, len(grid)))
    np.add.at(sums, column, err)
    counts = np.bincount(column, minlength=k).astype(np.float64)
    pooled = sums.sum(0) / max(counts.sum(), 1.0)
    score = sums + PRIOR_ENTRIES * pooled
    weights = grid[score.argmin(1)]
    blend = (estimates * weights[column]).sum(1)
    report = {m: float(np.abs(estimates[:, i] - truth).mean()) for i, m in enumerate(METHODS)}
    report["blend"] = float(np.abs(blend - truth).mean())
    report["entries"] = int(len(truth))
    return weights, report


def combine(weights: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """The blend of (3, rows, K) estimates with per-column weights (K, 3) -> (rows, K)."""
    return np.einsum("mrk,km->rk", estimates, weights)
