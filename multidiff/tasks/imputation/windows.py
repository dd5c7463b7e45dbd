"""Cut long series into fixed-length windows and stitch per-window samples back.

Each time step is taken from the one window whose centre is nearest, so samples are never
averaged across windows (averaging would shrink the predictive spread and bias CRPS).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ...core.training import Batches

__all__ = ["window_starts", "stitch", "WindowBatches"]


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


class WindowBatches(Batches):
    """Re-iterable mini-batches of training windows, gathered on the fly from the series: the
    core's :class:`~multidiff.core.training.Batches` over the window starts (``starts``, which
    may be cut after construction), so it shards for data-parallel training like any other.

    Every series is stored once, framed by ``context`` unobserved rows on each side (more after
    a series shorter than ``window``), and each batch gathers its windows of ``window + 2 *
    context`` rows by index: memory stays linear in the data however small the stride. A batch
    is ``{"values", "observed"}`` of shape (B, K, window + 2 context), NaN-free, plus
    ``"positions"`` (B, window). Windows whose centre holds fewer than two observed values are
    dropped (nothing to learn from)."""

    def __init__(self, series, window: int, context: int, stride: int, batch_size: int, shuffle: bool,
                 generator: Optional[torch.Generator] = None):
        blocks, starts, offset = [], [], 0
        k = series[0].shape[1]
        for s in series:
            s = np.asarray(s, dtype=np.float32)
            after = context + max(0, window - len(s))
            blocks += [np.full((context, k), np.nan, np.float32), s, np.full((after, k), np.nan, np.float32)]
            starts.append(offset + window_starts(len(s), min(window, len(s)), stride))
            offset += context + len(s) + after
        padded = np.concatenate(blocks)
        observed = ~np.isnan(padded)
        starts = np.concatenate(starts)
        per_row = np.concatenate([[0], np.cumsum(observed.sum(1))])
        centre_obs = per_row[starts + context + window] - per_row[starts + context]
        self.starts = torch.as_tensor(starts[centre_obs > 1], dtype=torch.long)
        self.values = torch.as_tensor(np.nan_to_num(padded))
        self.observed = torch.as_tensor(observed, dtype=torch.float32)
        self.offsets = torch.arange(window + 2 * context)
        self.positions = torch.arange(window, dtype=torch.float32)
        super().__init__(len(self.starts), batch_size, None, shuffle=shuffle, generator=generator)

    @property
    def n_items(self) -> int:
        return len(self.starts)

    def gather(self, idx: torch.Tensor) -> dict:
        """The windows starting at ``starts[idx]``."""
        rows = self.starts[idx][:, None] + self.offsets  # (B, W)
        return {"values": self.values[rows].transpose(1, 2), "observed": self.observed[rows].transpose(1, 2),
                "positions": self.positions.expand(len(rows), -1)}
