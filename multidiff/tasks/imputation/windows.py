"""Cut long series into fixed-length windows and stitch per-window samples back.

Each time step is taken from the one window whose centre is nearest, so samples are never
averaged across windows (averaging would shrink the predictive spread and bias CRPS).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ...core.training import Batches

__all__ = ["window_starts", "window_owners", "window_seed", "stitch", "interpolate_series", "WindowBatches"]


def window_starts(n_rows: int, window: int, stride: int) -> np.ndarray:
    """Start rows of windows of ``window`` rows every ``stride`` rows; the last window ends at
    the last row (CSDI's evaluation windows: stride == window, last one aligned to the end)."""
    if n_rows <= window:
        return np.zeros(1, dtype=int)
    starts = np.arange(0, n_rows - window + 1, stride)
    if starts[-1] != n_rows - window:
        starts = np.append(starts, n_rows - window)
    return starts


def window_owners(rows: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """For each row number in ``rows``, the window (an index into ``starts``) it is taken from:
    of the windows of ``length`` rows that hold it, the one whose centre is nearest, the first
    on a tie. Memory is linear in ``rows`` (only the few windows that can hold a row are
    compared), so a series of millions of rows is stitched without a rows x windows matrix."""
    rows = np.asarray(rows, dtype=np.int64)
    centres = starts + (length - 1) / 2.0
    first = np.searchsorted(starts, rows - length + 1, side="left")  # first window reaching the row
    last = np.searchsorted(starts, rows, side="right") - 1          # last window starting at or before it
    if len(rows) and ((last < first).any() or (first < 0).any()):
        raise ValueError("some rows lie in no window")
    best, best_dist = first.copy(), np.abs(rows - centres[first]) if len(rows) else np.zeros(0)
    for j in range(1, int((last - first).max(initial=0)) + 1):
        w = first + j
        inside = w <= last
        dist = np.where(inside, np.abs(rows - centres[np.minimum(w, len(starts) - 1)]), np.inf)
        nearer = dist < best_dist  # strict: the first window wins a tie
        best, best_dist = np.where(nearer, w, best), np.where(nearer, dist, best_dist)
    return best


def window_seed(seed: int, window: int) -> int:
    """A seed for the generator of window ``window``, mixed from ``(seed, window)`` by NumPy's
    SeedSequence so that nearby windows and seeds get unrelated streams."""
    return int(np.random.SeedSequence([seed, window]).generate_state(1, np.uint64)[0])


def stitch(window_samples: np.ndarray, starts: np.ndarray, n_rows: int) -> np.ndarray:
    """``window_samples``: (windows, S, length, K) -> (S, n_rows, K) by nearest window centre."""
    rows = np.arange(n_rows)
    owner = window_owners(rows, starts, window_samples.shape[2])
    out = window_samples[owner, :, rows - starts[owner], :]  # (n_rows, S, K)
    return np.ascontiguousarray(out.transpose(1, 0, 2))


_NO_ROW = 1 << 60  # stands for "no observed value on this side"; differences of two stay in int64


def interpolate_series(z: np.ndarray, before: Optional[tuple] = None, after: Optional[tuple] = None) -> np.ndarray:
    """Linear interpolation over time of a (rows, K) float32 series with NaN for missing: the
    conditioning base of a ``base="interpolation"`` model, bit for bit what
    :func:`~multidiff.core.conditioning.interpolate_masked` gives over the whole series (nearest
    value held past the first and last observation, 0 for a column with none).

    A piece of a longer series gives the rows of the whole series' interpolation when it is told
    the nearest observations outside it: ``before = (gaps, values)``, per column the distance in
    rows from the last observation before the piece to its first row (0 for none) and its
    value; ``after`` the same for the first observation after its last row. The weights are
    ratios of row differences, so they do not depend on where the piece sits in the series."""
    n, k = z.shape
    known = torch.as_tensor(~np.isnan(z).T)
    values = torch.as_tensor(np.nan_to_num(z).T.astype(np.float32))
    pos = torch.arange(n).expand(k, n)

    def edge(side, none: int, sign: int, origin: int):
        if side is None:
            return torch.full((k, 1), none), torch.zeros(k, 1)
        gaps, vals = (np.asarray(a).reshape(k) for a in side)
        rows = np.where(gaps > 0, origin + sign * gaps.astype(np.int64), none)
        return torch.as_tensor(rows)[:, None], torch.as_tensor(vals.astype(np.float32))[:, None]

    prev_row, prev_val = edge(before, -_NO_ROW, -1, 0)
    next_row, next_val = edge(after, _NO_ROW, 1, n - 1)
    prev = torch.where(known, pos, prev_row).cummax(dim=-1).values              # last known row at or before t
    nxt = torch.where(known, pos, next_row).flip(-1).cummin(dim=-1).values.flip(-1)  # first known at or after t
    has_prev, has_next = prev > -_NO_ROW, nxt < _NO_ROW
    v_prev = torch.where(prev >= 0, values.gather(-1, prev.clamp(0, n - 1)), prev_val)
    v_next = torch.where(nxt < n, values.gather(-1, nxt.clamp(0, n - 1)), next_val)
    span = (nxt - prev).clamp(min=1).to(values.dtype)
    w = (pos - prev).to(values.dtype) / span
    both = v_prev + w * (v_next - v_prev)
    out = torch.where(has_prev & has_next, both, torch.where(has_prev, v_prev, torch.where(has_next, v_next, 0.0)))
    return torch.where(known, values, out).T.numpy()


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
        """The number of training windows (those with more than one observed value in their centre)."""
        return len(self.starts)

    def gather(self, idx: torch.Tensor) -> dict:
        """The windows starting at ``starts[idx]``."""
        rows = self.starts[idx][:, None] + self.offsets  # (B, W)
        return {"values": self.values[rows].transpose(1, 2), "observed": self.observed[rows].transpose(1, 2),
                "positions": self.positions.expand(len(rows), -1)}
