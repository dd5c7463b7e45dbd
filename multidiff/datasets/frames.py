"""pandas adapter shared by the time-series tasks: validate a frame, pull out its numeric
columns as a float array with NaN for missing, and put results back without touching the input."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ..core.io import write_atomic

__all__ = ["NumericFrame", "numeric_frame", "is_number_dtype", "parse_time", "with_values", "read_table",
           "write_csv_atomic"]


@dataclass
class NumericFrame:
    values: np.ndarray           # (rows, columns) float64, NaN where missing
    columns: list                # labels of the numeric columns, in order
    time: Optional[pd.DatetimeIndex]  # timestamps when the frame has them (index or time column)
    time_column: Optional[str]   # name of the time column, if time came from one
    skipped: list = field(default_factory=list)  # labels of the non-numeric columns left as they are


_NOT_NUMBERS = ("boolean", "datetime", "datetime64", "date", "time", "timedelta", "timedelta64", "period", "interval")


def is_number_dtype(dtype) -> bool:
    """Whether a column of ``dtype`` holds numbers to impute: real numeric, not bool, complex or categorical."""
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_complex_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype))


def _parse_numbers(col: pd.Series, label) -> Optional[np.ndarray]:
    """A text (object/string dtype) column as float64, or None when its values are bools, dates
    or text none of which is a number. Raises when the column mixes numbers with other text
    (a number column with bad entries)."""
    if pd.api.types.infer_dtype(col, skipna=True) in _NOT_NUMBERS:
        return None
    # already missing: None/NaN, blank text, and "nan" (which float() itself reads as NaN)
    missing = col.isna() | col.map(lambda v: isinstance(v, str) and v.strip().lower() in ("", "nan"))
    try:
        converted = pd.to_numeric(col.mask(missing), errors="coerce")
        bad = converted.isna() & ~missing
    except (TypeError, ValueError):  # e.g. lists or dicts inside the column
        converted, bad = None, ~missing
    if bad.any() and (converted is None or converted.notna().sum() == 0):
        return None  # plain text (labels, names): not a number column; left as it is, and reported
    if bad.any():
        example = col[bad].iloc[0]
        try:
            pd.Timestamp(example)
            hint = f"; it looks like timestamps: pass time_column={label!r}"
        except (TypeError, ValueError):
            hint = ""
        raise ValueError(f"column {label!r} holds values that are not numbers (e.g. {example!r} in row "
                         f"{col.index[bad.to_numpy().argmax()]!r}); convert it (pd.to_numeric(df[{label!r}], "
                         "errors='coerce') turns such values into NaN) or pass only numeric columns "
                         f"(df.select_dtypes('number')){hint}")
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def parse_time(col, name, numbers: bool = True) -> pd.DatetimeIndex:
    """The timestamps of the column ``col`` (named ``name`` in errors) as a ``DatetimeIndex``.

    Raises ``ValueError`` saying which row is wrong and how to fix it when a value is not a
    timestamp (instead of pandas' strptime message), when formats are mixed, when a timestamp is
    missing (NaT: checked here, so that it is not reported later as "not sorted"), and, with
    ``numbers=False``, when the column holds numbers (pandas would read 0, 1, 2 ... as nanoseconds
    after 1970: a step counter is not a time axis)."""
    col = pd.Series(col)
    what = f"time column {name!r}"
    if numbers is False and is_number_dtype(col.dtype):
        raise ValueError(f"{what} holds numbers ({col.dtype}, e.g. {col.iloc[0]!r}), not timestamps; pandas would read "
                         "them as nanoseconds after 1970-01-01. Give real timestamps (e.g. df[" + repr(name) + "] = "
                         "pd.date_range('2020-01-01', periods=len(df), freq='D')), or, for a step counter, "
                         "drop the column and index the rows by dates")
    try:
        time = pd.DatetimeIndex(pd.to_datetime(col))
    except (ValueError, TypeError, OverflowError) as err:
        parsed = pd.to_datetime(col, errors="coerce", format="mixed")
        bad = parsed.isna() & col.notna()
        if bad.any():
            row = col.index[bad.to_numpy().argmax()]
            raise ValueError(f"{what} has values that are not timestamps (e.g. {col[row]!r} in row {row!r}); fix or "
                             f"drop those rows, or parse it yourself (pd.to_datetime(df[{name!r}], format=...))") from err
        raise ValueError(f"{what} mixes timestamp formats ({err}); parse it yourself with pd.to_datetime(df[{name!r}], "
                         "format='ISO8601') or format='mixed'") from err
    _check_nat(time, what)
    return time


def _check_nat(time: pd.DatetimeIndex, what: str) -> None:
    if time.hasnans:
        rows = np.flatnonzero(time.isna())
        raise ValueError(f"{what} has {len(rows)} missing timestamps (NaT), e.g. at position {int(rows[0])}; drop "
                         "those rows (df.dropna(subset=[time column]) or df[df.index.notna()]) or fill them in")


def numeric_frame(df, time_column: Optional[str] = None, allow_all_nan_columns: bool = True) -> NumericFrame:
    """Validate ``df`` and return its numeric part as a :class:`NumericFrame`.

    Numeric columns are used as they are. Text (object or string dtype) columns whose values
    all parse as numbers, apart from missing ones (None, NaN, ``""``), are converted and used
    too; a text column that mixes numbers with other text raises ``ValueError`` naming it.
    Plain text (no value a number), bool, datetime, timedelta and category columns are not numeric: they are left out of ``values``, listed in
    ``NumericFrame.skipped`` (so callers can warn) and kept untouched by :func:`with_values`.
    Raises ``TypeError``/``ValueError`` with the fix for anything else that is wrong
    (duplicated labels, unsorted or duplicated timestamps, inf, no numeric column ...).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}; wrap arrays with pd.DataFrame(...)")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"the DataFrame is empty (shape {df.shape}); pass at least one row and one numeric column")
    if df.columns.has_duplicates:
        dup = list(dict.fromkeys(df.columns[df.columns.duplicated()]))[:5]
        raise ValueError(f"the column labels {dup} occur more than once; rename them or keep the first of each "
                         "(df.loc[:, ~df.columns.duplicated()])")
    if df.index.has_duplicates:
        dup = df.index[df.index.duplicated()][:3].tolist()
        raise ValueError(f"the index has duplicated labels (e.g. {dup}); drop or aggregate duplicates first "
                         "(df[~df.index.duplicated()] or df.groupby(level=0).mean())")
    time = None
    if time_column is not None:
        if time_column not in df.columns:
            raise ValueError(f"time column {time_column!r} is not in the frame; columns are {list(df.columns)[:10]}")
        time = parse_time(df[time_column], time_column)
        if time.has_duplicates:
            raise ValueError(f"time column {time_column!r} has duplicated timestamps; aggregate them first")
    elif isinstance(df.index, pd.DatetimeIndex):
        time = df.index
        _check_nat(time, "the DatetimeIndex")
    if time is not None and not (time.is_monotonic_increasing or time.is_monotonic_decreasing):
        raise ValueError("timestamps are not sorted; sort the frame by time first (df.sort_index())")
    positions, skipped, parsed = [], [], {}
    for j, (c, dtype) in enumerate(zip(df.columns, df.dtypes)):
        if time_column is not None and c == time_column:
            continue
        if is_number_dtype(dtype):
            positions.append(j)
        elif not isinstance(dtype, pd.CategoricalDtype) and (pd.api.types.is_object_dtype(dtype)
                                                             or pd.api.types.is_string_dtype(dtype)):
            col = _parse_numbers(df.iloc[:, j], c)
            if col is None:
                skipped.append(c)
            else:
                parsed[len(positions)] = col
                positions.append(j)
        else:  # bool, datetime, timedelta, category, complex
            skipped.append(c)
    if not positions:
        raise ValueError(f"the frame has no numeric columns to work on (non-numeric: {skipped[:10]}); "
                         "convert them with pd.to_numeric")
    numeric = [df.columns[j] for j in positions]
    values = np.empty((len(df), len(positions)), dtype=np.float64)
    native = [k for k in range(len(positions)) if k not in parsed]
    if native:
        values[:, native] = df.iloc[:, [positions[k] for k in native]].to_numpy(dtype=np.float64, na_value=np.nan)
    for k, col in parsed.items():
        values[:, k] = col
    if np.isinf(values).any():
        bad = [str(c) for c, col in zip(numeric, values.T) if np.isinf(col).any()][:5]
        raise ValueError(f"columns {bad} contain inf; replace them (df.replace([np.inf, -np.inf], np.nan)) "
                         "to have them imputed, or fix the source")
    if not allow_all_nan_columns:
        empty = [str(c) for c, col in zip(numeric, values.T) if np.isnan(col).all()]
        if empty:
            raise ValueError(f"columns {empty} are entirely NaN, so nothing can be learned about them; "
                             "drop them or provide some observed values")
    return NumericFrame(values=values, columns=numeric, time=time, time_column=time_column, skipped=skipped)


def with_values(df: pd.DataFrame, frame: NumericFrame, values: np.ndarray) -> pd.DataFrame:
    """A copy of ``df`` whose numeric columns (``frame.columns``, tuple labels of MultiIndex columns
    included) hold ``values`` of shape (rows, columns) as float; a column with nothing missing that
    ``values`` leave unchanged, and every other column, is left as it was (dtype included), and
    ``df`` itself is never modified."""
    values = np.asarray(values)
    if values.shape != (len(df), len(frame.columns)):
        raise ValueError(f"values have shape {values.shape} but the frame needs {(len(df), len(frame.columns))} "
                         "(rows, numeric columns)")
    out = df.copy()
    for j, c in enumerate(frame.columns):
        if df[c].dtype != object and not df[c].isna().any() and np.array_equal(df[c].to_numpy(np.float64), values[:, j]):
            continue  # nothing imputed: the column keeps its values and dtype (an int64 column stays int64)
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
        df[time_column] = parse_time(df[time_column], time_column)
    return df


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> None:
    """Write ``df`` to CSV through a temporary file, so an interrupted write leaves no half file."""
    write_atomic(path, lambda tmp: df.to_csv(tmp, index=index))
