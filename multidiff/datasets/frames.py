"""pandas adapter shared by the time-series tasks: validate a frame, pull out its numeric
columns as a float array with NaN for missing, and put results back without touching the input."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ..core.checkpoint import write_atomic

__all__ = ["NumericFrame", "numeric_frame", "with_values", "read_table", "write_csv_atomic"]


@dataclass
class NumericFrame:
    values: np.ndarray           # (rows, columns) float64, NaN where missing
    columns: list                # labels of the numeric columns, in order
    time: Optional[pd.DatetimeIndex]  # timestamps when the frame has them (index or time column)
    time_column: Optional[str]   # name of the time column, if time came from one


def numeric_frame(df, time_column: Optional[str] = None, allow_all_nan_columns: bool = True) -> NumericFrame:
    """Validate ``df`` and return its numeric part. Raises ``TypeError``/``ValueError`` with the fix."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}; wrap arrays with pd.DataFrame(...)")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"the DataFrame is empty (shape {df.shape}); pass at least one row and one numeric column")
    if df.index.has_duplicates:
        dup = df.index[df.index.duplicated()][:3].tolist()
        raise ValueError(f"the index has duplicated labels (e.g. {dup}); drop or aggregate duplicates first "
                         "(df[~df.index.duplicated()] or df.groupby(level=0).mean())")
    time = None
    if time_column is not None:
        if time_column not in df.columns:
            raise ValueError(f"time column {time_column!r} is not in the frame; columns are {list(df.columns)[:10]}")
        time = pd.DatetimeIndex(pd.to_datetime(df[time_column]))
        if time.has_duplicates:
            raise ValueError(f"time column {time_column!r} has duplicated timestamps; aggregate them first")
    elif isinstance(df.index, pd.DatetimeIndex):
        time = df.index
    if time is not None and not (time.is_monotonic_increasing or time.is_monotonic_decreasing):
        raise ValueError("timestamps are not sorted; sort the frame by time first (df.sort_index())")
    numeric = [c for c in df.columns if c != time_column and pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])]
    if not numeric:
        raise ValueError("the frame has no numeric columns to work on; convert them with pd.to_numeric")
    values = df[numeric].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    if np.isinf(values).any():
        bad = [str(c) for c, col in zip(numeric, values.T) if np.isinf(col).any()][:5]
        raise ValueError(f"columns {bad} contain inf; replace them (df.replace([np.inf, -np.inf], np.nan)) "
                         "to have them imputed, or fix the source")
    if not allow_all_nan_columns:
        empty = [str(c) for c, col in zip(numeric, values.T) if np.isnan(col).all()]
        if empty:
            raise ValueError(f"columns {empty} are entirely NaN, so nothing can be learned about them; "
                             "drop them or provide some observed values")
    return NumericFrame(values=values, columns=numeric, time=time, time_column=time_column)


def with_values(df: pd.DataFrame, frame: NumericFrame, values: np.ndarray) -> pd.DataFrame:
    """A copy of ``df`` whose numeric columns hold ``values``; everything else is left as it was."""
    out = df.copy()
    for j, c in enumerate(frame.columns):
        out[c] = values[:, j]  # float, also for integer columns: imputed values are not integers
    return out


def read_table(path: str | os.PathLike, time_column: Optional[str] = None) -> pd.DataFrame:
    """Read a CSV (or parquet) as a user would give it; the time column becomes parsed datetimes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if time_column is not None:
        if time_column not in df.columns:
            raise ValueError(f"--time-column {time_column!r} is not a column of {path}; columns: {list(df.columns)[:10]}")
        df[time_column] = pd.to_datetime(df[time_column])
    return df


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> None:
    """Write ``df`` to CSV through a temporary file, so an interrupted write leaves no half file."""
    write_atomic(path, lambda tmp: df.to_csv(tmp, index=index))
