"""AQI-36: hourly PM2.5 of 36 Beijing stations, May 2014 - Apr 2015 (Yi et al. 2016), as
published in the STMVL release and used by BRITS, GRIN and CSDI.

``pm25_ground.txt`` holds the data with its real gaps; ``pm25_missing.txt`` additionally hides
the benchmark's evaluation entries. CSDI's protocol: test months 3, 6, 9, 12; training months
1, 2, 4, 5, 7, 8, 10, 11 with one of them (month 1 by default) kept for validation; 36-hour
windows; metrics in original units on entries present in ground and absent in missing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from .fetch import locate

__all__ = ["AQI36", "load_aqi36", "TEST_MONTHS", "TRAIN_MONTHS"]

TEST_MONTHS = (3, 6, 9, 12)
TRAIN_MONTHS = (1, 2, 4, 5, 7, 8, 10, 11)


@dataclass
class AQI36:
    ground: pd.DataFrame   # (8759, 36) with the real gaps as NaN
    missing: pd.DataFrame  # ground with the evaluation entries also NaN

    @property
    def eval_mask(self) -> pd.DataFrame:
        """True where a value exists in ground and is hidden in missing: the evaluation targets."""
        return self.ground.notna() & self.missing.isna()

    def months(self, months) -> list[pd.DataFrame]:
        """Ground-truth frames of the given calendar months, one frame per month (no window crosses a month)."""
        return [self.ground[self.ground.index.month == m] for m in months]

    def split(self, valid_month: int = 1):
        """CSDI's split: (train month frames, [valid month frame], test month numbers)."""
        if valid_month not in TRAIN_MONTHS:
            raise ValueError(f"valid_month must be one of the training months {TRAIN_MONTHS}, got {valid_month}")
        train = [m for m in TRAIN_MONTHS if m != valid_month]
        return self.months(train), self.months([valid_month]), TEST_MONTHS


def _read(path) -> pd.DataFrame:
    df = pd.read_csv(path, index_col="datetime", parse_dates=True)
    if df.shape[1] != 36:
        raise ValueError(f"{path} has {df.shape[1]} station columns, expected 36 (AQI-36)")
    return df.astype(np.float64)


def load_aqi36(path: Optional[str | os.PathLike] = None, download: bool = True) -> AQI36:
    """Read the two published files from ``path`` (a folder) or the data search path."""
    folder = locate("aqi36", path, download=download)
    ground, missing = _read(folder / "pm25_ground.txt"), _read(folder / "pm25_missing.txt")
    if not ground.index.equals(missing.index):
        raise ValueError("pm25_ground.txt and pm25_missing.txt have different timestamps; re-download them")
    return AQI36(ground=ground, missing=missing)
