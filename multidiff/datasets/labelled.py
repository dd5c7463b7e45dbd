"""Labelled (classification) data sets by name, as :class:`~multidiff.datasets.digits.LabelledSplit`:
the two the purification task (:mod:`multidiff.tasks.purify`) is shown on.

* ``digits``: scikit-learn's real 8x8 handwritten digits (see :mod:`multidiff.datasets.digits`).
* ``etth1``: ETTh1 (Zhou et al. 2021), one window per calendar day (24 hourly rows of the 7
  variables, channels first: ``(N, 7, 24)``), labelled with the meteorological season of the day
  (DJF winter, MAM spring, JJA summer, SON autumn). Blocked split by whole weeks (every 4th week
  tests), so both halves span both years and all seasons; a split by year fails because the load
  drifts between 2016/17 and 2017/18 (33 % test accuracy). Each
  variable is min-max scaled to [0, 1] with training statistics; test values outside are clipped
  (the fraction clipped is recorded in the description).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..core.validate import check_whole
from .digits import LabelledSplit, load_digits

__all__ = ["DATASETS", "load_dataset", "load_etth1_seasons"]

SEASONS = ["winter", "spring", "summer", "autumn"]


def load_etth1_seasons(path: Optional[str] = None, test_every: int = 4) -> LabelledSplit:
    """Daily ETTh1 windows with their season; ``path`` overrides the data search (a folder or the CSV).
    Blocked split: every ``test_every``-th run of 7 consecutive days is test data."""
    from .fetch import locate
    from .frames import numeric_frame, read_table

    csv = locate("etth1", path) / "ETTh1.csv"
    frame = numeric_frame(read_table(csv, time_column="date"), time_column="date")
    if np.isnan(frame.values).any():
        raise ValueError(f"{csv} has missing values; the season windows need complete days")
    days = frame.time.normalize()
    starts = np.flatnonzero((frame.time.hour == 0) & np.r_[True, days[1:] != days[:-1]])
    starts = [s for s in starts if s + 24 <= len(days) and days[s + 23] == days[s] and frame.time[s + 23].hour == 23]
    x = np.stack([frame.values[s:s + 24].T for s in starts]).astype(np.float32)
    month = np.asarray(frame.time[starts].month)
    y = (month % 12) // 3  # Dec/Jan/Feb -> 0, MAM -> 1, JJA -> 2, SON -> 3
    test_every = check_whole("test_every", test_every, 2)
    train = (np.arange(len(starts)) // 7) % test_every != test_every - 1
    lo = x[train].min(axis=(0, 2), keepdims=True)
    hi = x[train].max(axis=(0, 2), keepdims=True)
    scaled = (x - lo) / np.maximum(hi - lo, 1e-8)
    clipped = float(((scaled < 0) | (scaled > 1))[~train].mean())
    scaled = np.clip(scaled, 0, 1)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    return LabelledSplit(t(scaled[train]), t(y[train]).long(), t(scaled[~train]), t(y[~train]).long(), classes=SEASONS,
                         description=f"ETTh1 daily windows (7 x 24), season labels, every {test_every}th week tests, "
                                     f"min-max by train stats; {100 * clipped:.2f} % of test values clipped to [0, 1]")


DATASETS = {"digits": load_digits, "etth1": load_etth1_seasons}


def load_dataset(name: str, **kwargs) -> LabelledSplit:
    """``digits`` or ``etth1`` as a :class:`~multidiff.datasets.digits.LabelledSplit`."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](**kwargs)
