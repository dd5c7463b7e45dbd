"""The pretraining corpus of the column-agnostic imputer: real series and synthetic ones.

Synthetic series follow KernelSynth (Ansari et al. 2024, Chronos): Gaussian-process draws whose
kernel is a random sum or product of up to three kernels from a bank (linear, RBF, periodic,
rational quadratic, white noise, constant). Columns of one window mix a few shared draws (latent
factors, some of them delayed by a few rows, as pollution reaches neighbouring stations late) with
a draw of their own and noise, so that columns correlate as sensors of one system do; some windows
are exponentiated (positive, skewed, multiplicative like concentrations), some get spikes or are
quantised, and some get gaps of their own.

Real series are the shared data sets except PM2.5 (kept out to test transfer) and the ranges the
zero-shot checks score (ETTh1/ETTm1 from 2018-04-03 on, the last 2000 rows of the exchange rates).
Every column is normalised by its mean and standard deviation over its series (as
:class:`~.api.Imputer` normalises a frame); a window takes a random subset of a data set's
columns in a random order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch

from ...core.training import Batches
from ...datasets.fetch import locate

__all__ = ["kernel_synth", "synthetic_windows", "RealSeries", "load_real_series", "CorpusBatches", "HELD_OUT"]

HELD_OUT = ("PM2.5 (all of air_quality_pm25)", "ETTh1 and ETTm1 from 2018-04-03", "exchange_rate rows 5588 on")
_PERIODS = (4, 6, 7, 12, 24, 48, 52, 96, 144, 168)


def _kernel(kind: int, d: torch.Tensor, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    u = lambda lo, hi: lo + (hi - lo) * float(torch.rand((), generator=g))  # noqa: E731
    n = len(x)
    if kind == 0:  # RBF
        ell = math.exp(u(math.log(0.01), math.log(0.5)))
        return torch.exp(-d ** 2 / (2 * ell ** 2))
    if kind == 1:  # periodic, periods in rows
        period = _PERIODS[int(torch.randint(len(_PERIODS), (), generator=g))] / n
        ell = u(0.5, 2.0)
        return torch.exp(-2 * torch.sin(math.pi * d / period) ** 2 / ell ** 2)
    if kind == 2:  # rational quadratic
        ell, alpha = math.exp(u(math.log(0.02), math.log(0.5))), u(0.1, 2.0)
        return (1 + d ** 2 / (2 * alpha * ell ** 2)) ** -alpha
    if kind == 3:  # linear (a trend)
        c = u(0.0, 1.0)
        return (x[:, None] - c) * (x[None] - c) * u(0.5, 3.0)
    if kind == 4:  # white noise
        return torch.eye(n, dtype=d.dtype) * u(0.01, 0.3) ** 2
    return torch.full_like(d, u(0.1, 1.0))  # constant


def kernel_synth(n_series: int, length: int, generator: torch.Generator, draws_per_kernel: int = 4) -> torch.Tensor:
    """(n_series, length) Gaussian-process draws with KernelSynth kernels, each standardised."""
    x = torch.linspace(0, 1, length, dtype=torch.float64)
    d = x[:, None] - x[None]
    out = []
    while sum(len(o) for o in out) < n_series:
        parts = int(torch.randint(1, 4, (), generator=generator))
        k = _kernel(int(torch.randint(6, (), generator=generator)), d, x, generator)
        for _ in range(parts - 1):
            other = _kernel(int(torch.randint(6, (), generator=generator)), d, x, generator)
            k = k + other if torch.rand((), generator=generator) < 0.5 else k * other
        k = k + 1e-6 * torch.eye(length, dtype=k.dtype)
        chol, info = torch.linalg.cholesky_ex(k)
        if info != 0:
            continue
        z = torch.randn(length, draws_per_kernel, generator=generator, dtype=k.dtype)
        s = (chol @ z).T
        s = (s - s.mean(1, keepdim=True)) / s.std(1, keepdim=True).clamp(min=1e-6)
        out.append(s.float())
    return torch.cat(out)[:n_series]


def synthetic_windows(bank: torch.Tensor, n: int, k: int, length: int, generator: torch.Generator) -> tuple:
    """``n`` windows of ``k`` correlated columns and ``length`` rows from a bank of draws:
    (values (n, k, length), observed (n, k, length)), each column standardised over its draws."""
    g = generator
    rand = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    full = bank.shape[1]
    max_lag = 4
    span = length + max_lag
    pick = lambda *shape: torch.randint(len(bank), shape, generator=g)  # noqa: E731
    start = lambda *shape: torch.randint(full - span + 1, shape, generator=g)  # noqa: E731
    n_factors = 4
    fi, fs = pick(n, n_factors), start(n, n_factors)
    rows = fs[..., None] + torch.arange(span)
    factors = bank[fi[..., None], rows]                                            # (n, F, span)
    active = (torch.arange(n_factors) < torch.randint(1, n_factors + 1, (n, 1), generator=g)).float()
    loads = torch.randn(n, k, n_factors, generator=g) * active[:, None] * (rand(n, k, n_factors) < 0.8)
    lag = torch.where(rand(n, k) < 0.5, torch.randint(max_lag + 1, (n, k), generator=g), torch.zeros(n, k).long())
    idx = (max_lag - lag)[..., None] + torch.arange(length)                        # (n, k, L)
    shared = torch.einsum("nkf,nfkl->nkl", loads,
                          factors[:, :, None].expand(n, n_factors, k, span).gather(
                              3, idx[:, None].expand(n, n_factors, k, length)))
    own = bank[pick(n, k)[..., None], start(n, k)[..., None] + torch.arange(length)]
    x = shared + rand(n, k, 1) * 1.5 * own
    x = x / x.std(-1, keepdim=True).clamp(min=1e-3)
    x = x + torch.exp(math.log(0.005) + rand(n, k, 1) * math.log(60)) * torch.randn(n, k, length, generator=g)
    skew = rand(n, 1, 1) < 0.3
    x = torch.where(skew, torch.exp((0.3 + 0.9 * rand(n, 1, 1)) * x.clamp(max=8)), x)
    spikes = (rand(n, 1, 1) < 0.2) & (rand(n, k, length) < 0.01)
    x = x + spikes * (3 + 5 * rand(n, k, length)) * x.std(-1, keepdim=True)
    step = (torch.exp(math.log(0.05) + rand(n, k, 1) * math.log(10)) * x.std(-1, keepdim=True)).clamp(min=1e-4)
    x = torch.where(rand(n, 1, 1) < 0.15, torch.round(x / step) * step, x)
    x = (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True).clamp(min=1e-6)
    observed = torch.ones_like(x)
    gaps = rand(n, 1, 1) < 0.5
    holes = rand(n, k, length) < 0.3 * rand(n, k, 1)
    pos = torch.arange(length)
    s0 = (rand(n, k, 1) * length).long()
    block = (pos >= s0) & (pos < s0 + (rand(n, k, 1) * length / 3).long()) & (rand(n, k, 1) < 0.3)
    observed = torch.where(gaps & (holes | block), 0.0, observed)
    return torch.where(observed.bool(), x, 0.0), observed


@dataclass
class RealSeries:
    """A real data set of the pretraining corpus: its series and its share of the real windows."""

    name: str
    series: list          # (rows, columns) float32 arrays, normalised per column, NaN for missing
    weight: float         # share of the real windows drawn from this data set


def _normalised(a: np.ndarray) -> np.ndarray:
    mean, std = np.nanmean(a, 0), np.nanstd(a, 0)
    return ((a - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def load_real_series(data: Optional[str] = None, physionet_limit: Optional[int] = None) -> list[RealSeries]:
    """The real part of the corpus, read from the shared data folder (``data`` or the default
    roots), with the held-out ranges of :data:`HELD_OUT` cut away."""
    out = []
    for name, w in (("ETTh1", 0.08), ("ETTm1", 0.08)):
        df = pd.read_csv(locate(name.lower(), data) / f"{name}.csv", index_col="date", parse_dates=True)
        out.append(RealSeries(name, [_normalised(df[df.index < "2018-04-03"].to_numpy(float))], w))
    x = pd.read_csv(locate("exchange_rate", data) / "exchange_rate.txt.gz", header=None).to_numpy(float)[:5588]
    out.append(RealSeries("exchange_rate", [_normalised(x)], 0.07))
    weather = pd.read_csv(locate("weather", data) / "weather.csv", index_col=0).to_numpy(float)
    weather[weather <= -9998] = np.nan  # the station's missing-value code
    out.append(RealSeries("weather", [_normalised(weather)], 0.12))
    ili = pd.read_csv(locate("illness", data) / "national_illness.csv", index_col=0).to_numpy(float)
    out.append(RealSeries("illness", [_normalised(ili)], 0.05))
    from ...datasets.physionet import load_physionet
    p = load_physionet(locate("physionet2012", data), limit=physionet_limit).values
    flat = _normalised(p.reshape(-1, p.shape[2])).reshape(p.shape)
    out.append(RealSeries("physionet2012", list(flat), 0.10))
    return out


class CorpusBatches(Batches):
    """``batches_per_pass`` mini-batches per pass, each ``{"values", "observed", "length"}``: frames
    (B, K, C + L + C) whose centre L rows are the training window and whose C rows each side
    (``context`` to ``max_frame_context``, log-uniform per batch) are what the frame regression
    fits on beside it, as it fits on a whole frame when imputing. Half of the batches
    (``synthetic``) come from KernelSynth draws, the others from a real data set picked by weight.
    K is drawn from 1 to ``max_columns`` (a real set's columns at most) and B so that a batch's
    windows hold about ``cells`` cells. Draws come from ``generator`` (saved with the training
    checkpoints, so a resumed run continues the same stream); the synthetic bank is redrawn
    every pass."""

    def __init__(self, real: Sequence[RealSeries], batches_per_pass: int = 500, length: int = 64, context: int = 16,
                 max_columns: int = 16, cells: int = 10_000, synthetic: float = 0.5, bank_size: int = 4000,
                 max_frame_context: int = 480, bank_length: int = 384, generator: Optional[torch.Generator] = None):
        self.real, self.batches_per_pass, self.length, self.context = list(real), batches_per_pass, length, context
        self.max_frame_context, self.bank_length = max_frame_context, bank_length
        self.max_columns, self.cells, self.synthetic, self.bank_size = max_columns, cells, synthetic, bank_size
        super().__init__(batches_per_pass, 1, None, shuffle=True, generator=generator or torch.Generator().manual_seed(0))
        weights = np.array([r.weight for r in self.real], dtype=float)
        self.weights = weights / weights.sum() if len(weights) else weights

    def __len__(self) -> int:
        return self.batches_per_pass

    def gather(self, idx):
        """Not used: the corpus draws its batches (:meth:`__iter__`) rather than indexing items."""
        raise NotImplementedError

    def __iter__(self):
        g = self.generator
        bank = kernel_synth(self.bank_size, self.bank_length, g)
        for _ in range(self.batches_per_pass):
            u = float(torch.rand((), generator=g))
            frame_context = int(round(math.exp(math.log(self.context) + u * math.log(self.max_frame_context /
                                                                                         self.context))))
            if not self.real or float(torch.rand((), generator=g)) < self.synthetic:
                k = int(torch.randint(1, self.max_columns + 1, (), generator=g))
                b = max(4, min(64, self.cells // (k * self.length)))
                c = min(frame_context, (self.bank_length - 8 - self.length) // 2)
                v, o = synthetic_windows(bank, b, k, self.length + 2 * c, g)
                yield {"values": v, "observed": o, "length": self.length}
            else:
                yield self._real_batch(g, frame_context)

    def _real_batch(self, g: torch.Generator, frame_context: int) -> dict:
        r = float(torch.rand((), generator=g))
        src = self.real[int(np.searchsorted(np.cumsum(self.weights), r * 0.999999))]
        width = src.series[0].shape[1]
        k = int(torch.randint(1, min(self.max_columns, width) + 1, (), generator=g))
        short = len(src.series[0]) < self.length  # e.g. 48-hour ICU stays: the whole stay, padded
        length = len(src.series[0]) if short else self.length
        b = max(4, min(64, self.cells // (k * length)))
        shortest = min(len(x) for x in src.series)
        context = self.context if short else max(self.context, min(frame_context, (shortest - length) // 2))
        total = length + 2 * context
        values = np.zeros((b, k, total), np.float32)
        observed = np.zeros((b, k, total), np.float32)
        for i in range(b):
            for _ in range(20):  # a window whose centre holds at least two values
                s = src.series[int(torch.randint(len(src.series), (), generator=g))]
                cols = torch.randperm(width, generator=g)[:k].numpy()
                if short:
                    chunk = np.full((total, k), np.nan, np.float32)
                    chunk[context:context + len(s)] = s[:, cols]
                else:
                    st = int(torch.randint(len(s) - total + 1, (), generator=g))
                    chunk = s[st:st + total, cols]
                centre = chunk[context:context + length]
                if (~np.isnan(centre)).sum() >= 2:
                    break
            values[i], observed[i] = np.nan_to_num(chunk).T, ~np.isnan(chunk.T)
        return {"values": torch.from_numpy(values), "observed": torch.from_numpy(observed), "length": length}
