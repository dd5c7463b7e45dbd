"""The windowed sampler of a CSDI imputer (Tashiro et al., NeurIPS 2021): a long normalised series
cut into windows of ``window`` rows, the samples of every window drawn in batches of windows (all
samples of ``per_call`` windows in one network call), and stitched back into the series (each row
from the window it is most central in, :func:`~.windows.stitch`).

Window ``w`` draws all its noise from its own generator seeded with ``(seed, w)``
(:func:`~.windows.window_seed`), so the samples depend neither on the batching nor on which rows
are asked for: :meth:`WindowSampler.sample_segment` gives the rows of a segment exactly as
:meth:`WindowSampler.sample` gives them over the whole series (what :mod:`.dask` relies on).
:meth:`Imputer.window_sampler <multidiff.tasks.imputation.Imputer.window_sampler>` builds the one an
imputer samples with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ...core.device import resolve_device
from ...core.samplers import rowwise_randn
from .model import CSDIModel
from .windows import interpolate_series, stitch, window_owners, window_seed as _window_seed, window_starts

__all__ = ["WindowSampler"]

TOKENS_PER_CALL = 40_000  # grid cells per network call when sampling: small calls stay in cache and
                          # reuse memory (measured 2x faster per window on 2 cores than 10x larger calls)


@dataclass(frozen=True)
class WindowSampler:
    """How a :class:`~.model.CSDIModel` samples a long normalised series, window by window.

    Arrays are normalised (per-column z-scores) with NaN for missing; ``low``/``high`` are the
    per-column range the samples may reach before ``clip`` widens it (the imputer's
    ``observed_range``)."""

    window: int                              # rows per window (cut to the series' rows when shorter)
    stride: Optional[int]                    # rows between window starts (None: window, no overlap, as CSDI evaluates)
    sampler: str                             # a discrete sampler of core.samplers
    sampler_steps: Optional[int]             # None: every step of the training schedule
    clip: Optional[float]                    # clamp implied clean values to [low, high] widened by clip x range (None: off)
    base: Optional[str]                      # "interpolation": condition on the whole series' interpolation; None: no base
    sample_batch_size: Optional[int]         # samples per network call (None: about TOKENS_PER_CALL grid cells)
    device: str                              # "auto", "cpu", "cuda", ...

    def plan(self, n_rows: int, k: int, n_samples: int) -> tuple[np.ndarray, int, int]:
        """The inference windows of a series of ``n_rows`` rows and K = ``k`` columns: their start
        rows, their length, and how many windows go through the network per call."""
        length = min(self.window, n_rows)
        starts = window_starts(n_rows, length, self.stride or length)
        if self.sample_batch_size is not None:
            per_call = max(1, self.sample_batch_size // n_samples)
        else:
            per_call = max(1, TOKENS_PER_CALL // (k * length * n_samples))
        return starts, length, per_call

    def sample(self, model: CSDIModel, z: np.ndarray, n_samples: int, seed: int, low: np.ndarray, high: np.ndarray,
               rows: Optional[np.ndarray] = None) -> np.ndarray:
        """Samples (n_samples, rows, K) of a normalised series ``z`` (NaN = missing). The series
        is cut into windows every ``stride`` rows (by default non-overlapping, as CSDI
        evaluates), the interpolation base is computed over the whole series, and all samples of
        several windows go through the network in one call. ``rows`` restricts the work to the
        windows that hold those rows (the others come back as NaN)."""
        n_rows, k = z.shape
        starts, length, per_call = self.plan(n_rows, k, n_samples)
        windows = np.arange(len(starts))
        if rows is not None:  # only windows that own one of the rows
            windows = np.unique(np.searchsorted(starts, rows, side="right") - 1)
        base = interpolate_series(z) if self.base is not None else None
        calls = [windows[i:i + per_call] for i in range(0, len(windows), per_call)]
        out = self.sample_windows(model, z, base, 0, starts, length, calls, n_samples, seed, low, high)
        return stitch(out, starts, n_rows) if rows is None else _place([out], starts[windows], n_rows)

    def sample_windows(self, model: CSDIModel, z: np.ndarray, base: Optional[np.ndarray], first_row: int,
                       starts: np.ndarray, length: int, calls: list, n_samples: int, seed: int, low: np.ndarray,
                       high: np.ndarray) -> np.ndarray:
        """Samples (windows, n_samples, length, K) of the windows listed in ``calls`` (one array of
        window numbers per network call), in that order. ``z`` and ``base`` hold the rows from
        ``first_row`` on of the series whose windows start at ``starts``; window ``w`` draws its
        noise from its own generator seeded with ``(seed, w)``."""
        device = resolve_device(self.device)
        model = model.to(device).eval()
        k = z.shape[1]
        bounds = None
        if self.clip is not None:
            width = (high - low) * self.clip
            bounds = tuple(torch.tensor(b, dtype=torch.float32, device=device)[:, None]
                           for b in (low - width, high + width))
        pos = torch.arange(length, device=device, dtype=torch.float32)
        values, obs = np.nan_to_num(z), ~np.isnan(z)
        out = []
        for call in calls:
            local = starts[call] - first_row
            cut = lambda a: torch.as_tensor(np.stack([a[s:s + length].T for s in local]), dtype=torch.float32,
                                            device=device)
            v, m = cut(values), cut(obs)
            gens = [torch.Generator(device=device).manual_seed(_window_seed(seed, int(w))) for w in call]
            s = model.impute(v, m, pos.expand(len(v), length), n_samples, sampler=self.sampler,
                             sampler_steps=self.sampler_steps, x0_bounds=bounds,
                             base=cut(base) if base is not None else None, randn=rowwise_randn(gens, n_samples))
            out.append(s.permute(1, 0, 3, 2).float().cpu().numpy())  # (windows, S, L, K)
        return np.concatenate(out) if out else np.zeros((0, n_samples, length, k), np.float32)

    def segment_overlap(self, n_rows: int, k: int, n_samples: int) -> int:
        """Rows that :meth:`sample_segment` needs on each side of a segment of a series of
        ``n_rows`` rows and K = ``k`` columns: the windows that own the segment's rows reach
        ``length - 1`` rows past it, and the network calls they share (whole groups of ``per_call``
        consecutive windows, as a single-machine run makes them) up to ``per_call - 1`` windows further."""
        starts, length, per_call = self.plan(n_rows, k, n_samples)
        return length - 1 + (per_call - 1) * (self.stride or length)

    def sample_segment(self, model: CSDIModel, z: np.ndarray, base: Optional[np.ndarray], first_row: int, n_rows: int,
                       own: tuple[int, int], n_samples: int, seed: int, low: np.ndarray,
                       high: np.ndarray) -> np.ndarray:
        """Samples (n_samples, own rows, K) of the rows ``own = (a, b)`` (global numbers, end
        excluded) of a normalised series of ``n_rows`` rows, of which ``z`` holds the rows from
        ``first_row`` on (and ``base`` its interpolation over the whole series).

        They equal rows a..b of :meth:`sample` over the whole series: the windows,
        their seeds and the groups of windows that share a network call are those of the whole
        series (float32 matmuls of other shapes could round differently), so ``z`` must reach
        :meth:`segment_overlap` rows past the segment (less at the ends of the series); ``low`` and
        ``high`` are the whole series' range (the imputer's ``observed_range``)."""
        starts, length, per_call = self.plan(n_rows, z.shape[1], n_samples)
        a, b = own
        owners = window_owners(np.arange(a, b), starts, length)
        first, last = owners.min() // per_call * per_call, min(len(starts), (owners.max() // per_call + 1) * per_call)
        if starts[first] < first_row or starts[last - 1] + length > first_row + len(z):
            raise ValueError(f"rows {a}..{b - 1} need the rows {starts[first]}..{starts[last - 1] + length - 1} of the "
                             f"series, but the segment holds rows {first_row}..{first_row + len(z) - 1}")
        windows = np.arange(first, last)
        calls = [windows[i:i + per_call] for i in range(0, len(windows), per_call)]
        out = self.sample_windows(model, z, base, first_row, starts, length, calls, n_samples, seed, low, high)
        rows = np.arange(a, b)
        picked = out[owners - first, :, rows - starts[owners], :]  # (own rows, S, K)
        return np.ascontiguousarray(picked.transpose(1, 0, 2))


def _place(out: list, starts: np.ndarray, n_rows: int) -> np.ndarray:
    """Windows (W, S, L, K) put at their rows of an (S, n_rows, K) array of NaN (the rows of no window)."""
    windows = np.concatenate(out)
    placed = np.full((windows.shape[1], n_rows, windows.shape[3]), np.nan, dtype=windows.dtype)
    for w, start in zip(windows, starts):
        placed[:, start:start + windows.shape[2]] = w
    return placed
