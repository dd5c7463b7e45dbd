"""Cut long series into fixed-length windows and stitch per-window samples back.

Each time step is taken from the one window whose centre is nearest, so samples are never
averaged across windows (averaging would shrink the predictive spread and bias CRPS).
"""
from __future__ import annotations

import numpy as np

__all__ = ["window_starts", "stitch"]


def window_starts(n_rows: int, window: int, stride: int) -> np.ndarray:
    """Start rows of windows of ``window`` rows every ``stride`` rows; the last window ends at
    the last row (CSDI's evaluation windows: stride == window, last one aligned to the end)."""
    if n_rows <= window:
        return np.zeros(1, dtype=int)
    starts = np.arange(0, n_rows - window + 1, stride)
    if starts[-1] != n_rows - window:
        starts = np.append(starts, n_rows - window)
    return starts


def stitch(window_samples: np.ndarray, starts: np.ndarray, n_rows: int) -> np.ndarray:
    """``window_samples``: (windows, S, length, K) -> (S, n_rows, K) by nearest window centre."""
    n_win, s, length, k = window_samples.shape
    rows = np.arange(n_rows)
    centres = starts + (length - 1) / 2.0
    valid = (rows[:, None] >= starts[None]) & (rows[:, None] < starts[None] + length)
    dist = np.where(valid, np.abs(rows[:, None] - centres[None]), np.inf)
    owner = dist.argmin(axis=1)
    out = window_samples[owner, :, rows - starts[owner], :]  # (n_rows, S, K)
    return np.ascontiguousarray(out.transpose(1, 0, 2))
