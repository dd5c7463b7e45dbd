"""Wide pandas DataFrames <-> GluonTS multivariate datasets, and readers for the forecasting
benchmarks of TimeGrad (Rasul et al. 2021): LSTNet's ``exchange_rate.txt.gz`` and ETTh1.

A multivariate GluonTS entry is ``{"start": pd.Period, "target": (D, T) array}``; a wide frame
has a regular DatetimeIndex (rows = time) and one numeric column per series. NaN stays NaN: the
model masks it out.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from ..core.validate import check_whole
from .fetch import locate
from .frames import numeric_frame, parse_time

__all__ = ["EXCHANGE_COLUMNS", "SKIPPED_COLUMNS", "read_exchange_rate", "read_etth1", "frame_index", "period_freq", "same_freq", "check_dataset",
           "frame_to_dataset",
           "values_to_dataset", "LEVEL_RATIO", "series_level", "shift_to_level", "LevelShifted", "dataset_to_frames", "to_multivariate", "to_univariate", "rolling_split", "validation_split", "Benchmark",
           "BENCHMARKS", "load_benchmark"]

SKIPPED_COLUMNS = "are not forecast: they hold no numbers"  # the warning of frame_index, for filters

# LSTNet (Lai et al. 2018): Australia, British, Canada, Switzerland, China, Japan, New Zealand, Singapore
EXCHANGE_COLUMNS = ["AUD", "GBP", "CAD", "CHF", "CNY", "JPY", "NZD", "SGD"]


def read_exchange_rate(path: Optional[str | os.PathLike] = None) -> pd.DataFrame:
    """LSTNet's daily exchange rates (7588 x 8, no header) as a wide frame on GluonTS' calendar
    for this file: business days from 1990-01-01 (``gluonts.dataset.repository._lstnet``)."""
    folder = locate("exchange_rate", path)
    values = pd.read_csv(folder / "exchange_rate.txt.gz", header=None).to_numpy(dtype=np.float64)
    if values.shape[1] != len(EXCHANGE_COLUMNS):
        raise ValueError(f"{folder / 'exchange_rate.txt.gz'} has {values.shape[1]} columns, expected 8; "
                         "is this LSTNet's exchange_rate file?")
    index = pd.date_range("1990-01-01", periods=len(values), freq="B", name="date")
    return pd.DataFrame(values, index=index, columns=EXCHANGE_COLUMNS)


def read_etth1(path: Optional[str | os.PathLike] = None) -> pd.DataFrame:
    """ETTh1 (Zhou et al. 2021): hourly, 7 series (``date,HUFL,...,OT``) indexed by ``date``."""
    folder = locate("etth1", path)
    df = pd.read_csv(folder / "ETTh1.csv", parse_dates=["date"]).set_index("date")
    return df.asfreq("h")


_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def period_freq(freq) -> str:
    """The period alias GluonTS needs for the timestamp frequency ``freq`` (a string or a pandas
    offset): GluonTS dates series by ``pd.Period``, whose calendar aliases differ from the
    timestamp ones. Month end or start (``"ME"``, ``"MS"``, ``"BME"``, ``"BMS"``) -> ``"M"``;
    quarters -> ``"Q-<last month>"`` (``"QE"`` -> ``"Q-DEC"``, ``"QS"`` = ``"QS-JAN"`` ->
    ``"Q-DEC"``, ``"QS-MAR"`` -> ``"Q-FEB"``); years likewise (``"YE"``, ``"YS"`` -> ``"Y-DEC"``);
    multiples are kept (``"2ME"`` -> ``"2M"``); period aliases are returned as they are, and
    every other frequency (``"h"``, ``"D"``, ``"B"``, ``"W-SUN"``, ``"15min"`` ...) is its own
    alias. Raises ``ValueError`` for a frequency periods cannot express (``"SME"``, semi-months)."""
    with warnings.catch_warnings():  # "M", "Q", "Y" are period aliases; pandas warns on them as offsets
        warnings.simplefilter("ignore", FutureWarning)
        try:
            offset = pd.tseries.frequencies.to_offset(freq)
        except ValueError as err:
            raise ValueError(f"freq={freq!r} is not a pandas frequency string (e.g. 'h', 'D', 'B', 'ME', "
                             "'15min')") from err
    n = "" if offset.n == 1 else str(offset.n)
    off = pd.offsets
    if isinstance(offset, (off.MonthEnd, off.MonthBegin, off.BusinessMonthEnd, off.BusinessMonthBegin)):
        return f"{n}M"
    if isinstance(offset, (off.QuarterEnd, off.BQuarterEnd)):
        return f"{n}Q-{_MONTHS[offset.startingMonth - 1]}"
    if isinstance(offset, (off.QuarterBegin, off.BQuarterBegin)):  # a quarter from March ends in February
        return f"{n}Q-{_MONTHS[offset.startingMonth - 2]}"
    if isinstance(offset, (off.YearEnd, off.BYearEnd)):
        return f"{n}Y-{_MONTHS[offset.month - 1]}"
    if isinstance(offset, (off.YearBegin, off.BYearBegin)):
        return f"{n}Y-{_MONTHS[offset.month - 2]}"
    try:
        with warnings.catch_warnings():  # Period with "B" is deprecated in pandas but GluonTS uses it
            warnings.simplefilter("ignore", FutureWarning)
            pd.Period("2000-01-03", freq=offset)
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"freq={offset.freqstr!r} cannot be forecast: GluonTS dates series by pandas periods, which "
                         f"have no {offset.freqstr!r} ({err}); resample the frame to a frequency periods have, e.g. "
                         "df.resample('ME').mean() or df.asfreq('D')") from err
    return offset.freqstr


def same_freq(start: pd.Period, freq: str) -> bool:
    """Whether the period ``start`` of a GluonTS entry is dated in ``freq`` (either spelling:
    ``"ME"`` and ``"M"`` are the same month)."""
    return period_freq(start.freqstr) == period_freq(freq)


def check_dataset(data, what: str = "training_data") -> None:
    """``TypeError`` saying what to pass when ``data`` is not a GluonTS dataset (an iterable of entry
    dicts): a ``(dataset, freq)`` pair as :func:`frame_to_dataset` returns, a DataFrame, an array."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], str):
        raise TypeError(f"{what} is a (dataset, freq) pair, as frame_to_dataset returns; pass the dataset alone: "
                        "ds, freq = frame_to_dataset(df); estimator.train(ds)")
    if isinstance(data, pd.DataFrame):
        raise TypeError(f"{what} is a DataFrame; convert it with ds, freq = "
                        "multidiff.datasets.gluonts_adapters.frame_to_dataset(df), or forecast it with "
                        "multidiff.tasks.forecasting.forecast(df, horizon)")
    if isinstance(data, (str, bytes, np.ndarray, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(f"{what} must be a GluonTS dataset (an iterable of dicts with 'start' and 'target'), got "
                        f"{type(data).__name__}; build one with frame_to_dataset(df) or ListDataset")


def frame_index(df: pd.DataFrame, freq: Optional[str] = None, time_column: Optional[str] = None, *,
                allow_all_nan_columns: bool = True, stacklevel: int = 2):
    """Validate ``df`` for forecasting and return ``(values (T, D), columns, index, freq)``.

    The timestamps must be strictly increasing and regular; ``freq`` is taken from the index
    (``df.index.freq`` or ``pd.infer_freq``) when not given. Columns are read by
    :func:`multidiff.datasets.frames.numeric_frame`: numeric text columns are converted, a text
    column mixing numbers with other text raises ``ValueError``, and columns that are not numbers
    (plain text, bool, dates, categories) are left out with a ``UserWarning`` naming them
    (``stacklevel`` as for ``warnings.warn`` called here: 2 is the caller of this function).
    ``allow_all_nan_columns=False`` raises on columns that are entirely NaN. A ``time_column`` of
    numbers raises (pandas would read a step counter as nanoseconds after 1970). The returned
    ``freq`` is the timestamp frequency (``"ME"``, ``"h"`` ...); GluonTS takes its
    :func:`period_freq`.
    """
    if isinstance(df, pd.DataFrame) and time_column is not None and time_column in df.columns:
        parse_time(df[time_column], time_column, numbers=False)  # a step counter is not read as nanoseconds
    frame = numeric_frame(df, time_column=time_column, allow_all_nan_columns=allow_all_nan_columns)
    if frame.skipped:
        more = " ..." if len(frame.skipped) > 10 else ""
        warnings.warn(f"columns {frame.skipped[:10]}{more} {SKIPPED_COLUMNS} (plain text, bool, dates or "
                      "categories); convert them with pd.to_numeric to forecast them, or drop them to silence this",
                      UserWarning, stacklevel=stacklevel)
    index = frame.time
    if index is None:
        raise ValueError("forecasting needs timestamps: give the frame a DatetimeIndex "
                         "(df.set_index(pd.to_datetime(df['date']))) or pass time_column=")
    if len(index) > 1 and not index.is_monotonic_increasing:
        raise ValueError("timestamps must increase from row to row; sort the frame first (df.sort_index())")
    freq = freq or getattr(index, "freqstr", None) or (pd.infer_freq(index) if len(index) >= 3 else None)
    if freq is None:
        raise ValueError("cannot tell the frequency of the timestamps: they are irregular or too few; pass "
                         "freq='h' / 'D' / 'B' ..., and resample gaps with df.asfreq(freq) (missing rows become NaN)")
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError as err:
        raise ValueError(f"freq={freq!r} is not a pandas frequency string (e.g. 'h', 'D', 'B', '15min')") from err
    expected = pd.date_range(index[0], periods=len(index), freq=offset)
    if not expected.equals(pd.DatetimeIndex(index)):
        bad = int(np.argmax(expected != index))
        raise ValueError(f"timestamps are irregular for freq={freq!r}: row {bad} is {index[bad]}, expected "
                         f"{expected[bad]}; fill the gaps with df.asfreq({freq!r}) (they become NaN) or pass "
                         "the right freq")
    return frame.values, list(frame.columns), pd.DatetimeIndex(index), offset.freqstr


# a level this many times a series' step-to-step variation is taken off before the float32 models
# see the series: float32 keeps 7 digits, so at 1e4 a step still has ~3 of them
LEVEL_RATIO = 1e4


def _level_and_spread(values: np.ndarray, context_length: int) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns with < 2 observed values
        level = np.nanmean(values[-context_length:], axis=0)
        spread = np.nanstd(np.diff(values, axis=0), axis=0)
        spread = np.where(spread > 0, spread, np.nanstd(values, axis=0))
    return np.nan_to_num(level), np.nan_to_num(spread)


def series_level(values: np.ndarray, context_length: int) -> np.ndarray:
    """Per column of ``values`` (T, D) -> (D,): the float64 mean of the observed values of the last
    ``context_length`` rows where that level is more than :data:`LEVEL_RATIO` times the column's
    variation (the std of its one-step changes, else of its values), 0 elsewhere: the level the
    forecasters take off a series before they compute in float32, and add back to the forecast."""
    level, spread = _level_and_spread(np.asarray(values, dtype=np.float64), context_length)
    return np.where(np.abs(level) > LEVEL_RATIO * spread, level, 0.0)


def shift_to_level(entry: dict, context_length: int, warn: bool = True, stacklevel: int = 2) -> tuple[dict, np.ndarray]:
    """``(shifted entry, level)`` for a GluonTS entry whose ``target`` is (T,) or (D, T): per series
    the :func:`series_level` of its last ``context_length`` steps (``level``, shape (D,) or (1,)) is
    subtracted from the target in float64, so that the float32 models keep the series' digits
    (``1e9 + a random walk`` would lose the walk); add ``level`` back to the forecast samples. The
    entry is returned as it is (and ``level`` is 0) for series near zero and for targets that are not
    numbers (the model's own checks report them). A float32 target far from zero has lost its digits
    before any model sees it (``gluonts.dataset.common.ListDataset`` stores float32): with ``warn``, a
    ``UserWarning`` says so."""
    try:
        raw = np.asarray(entry["target"])
        target = raw.astype(np.float64)
    except (KeyError, TypeError, ValueError):
        return entry, np.zeros(1)
    if target.ndim not in (1, 2) or target.size == 0:
        return entry, np.zeros(1)
    values = target[:, None] if target.ndim == 1 else target.T
    level, spread = _level_and_spread(values, context_length)
    level = np.where(np.abs(level) > LEVEL_RATIO * spread, level, 0.0)
    if not level.any():
        return entry, level
    if warn and raw.dtype == np.float32:
        gap = np.spacing(np.abs(level).astype(np.float32)).astype(np.float64)  # between float32 neighbours
        rounded = (level != 0) & np.where(spread > 0, gap > 0.1 * spread, gap >= 1)
        if rounded.any():
            warnings.warn(f"entry {entry.get('item_id', '?')!r} holds float32 values far from zero (a level of "
                          f"{np.abs(level[rounded]).max():.6g}, where float32 values lie {gap[rounded].max():g} "
                          "apart): float32 keeps 7 digits and has rounded the series' steps; keep the target float64 "
                          "(frame_to_dataset does; ListDataset converts to float32)", UserWarning, stacklevel=stacklevel)
    shifted = target - (level if target.ndim == 1 else level[:, None])
    return {**entry, "target": shifted}, level


class LevelShifted:
    """The entries of a GluonTS dataset through :func:`shift_to_level` (without its warning: call it
    on the entries before), lazily (sized when the dataset is): what the forecasters train on."""

    def __init__(self, dataset, context_length: int) -> None:
        self.dataset, self.context_length = dataset, context_length

    def __iter__(self):
        for entry in self.dataset:
            yield shift_to_level(entry, self.context_length, warn=False)[0]

    def __len__(self) -> int:
        return len(self.dataset)


def frame_to_dataset(df: pd.DataFrame, freq: Optional[str] = None, time_column: Optional[str] = None,
                     item_id: str = "0"):
    """One multivariate GluonTS entry from a wide frame; returns ``(dataset, freq)`` with ``freq`` the
    period alias the estimator takes (:func:`period_freq`) and ``dataset`` a list of one entry whose
    target keeps the frame's float64 values (:func:`values_to_dataset`). Columns that are not numbers
    are left out with a warning (:func:`frame_index`)."""
    values, _, index, freq = frame_index(df, freq, time_column, stacklevel=3)
    return values_to_dataset(values, index, freq, item_id), period_freq(freq)


def values_to_dataset(values: np.ndarray, index: pd.DatetimeIndex, freq: str, item_id: str = "0"):
    """One multivariate GluonTS entry from ``(values (T, D), index, freq)`` as :func:`frame_index` returns them
    (``freq`` a timestamp frequency such as ``"ME"``: the entry is dated in its :func:`period_freq`), as a
    list: a GluonTS ``ListDataset`` would store the target in float32, rounding away the steps of a
    series far from zero (``1e9 + a random walk``); the forecasters take the float64 level off first
    (:func:`shift_to_level`)."""
    freq = period_freq(freq)
    entry = {"start": pd.Period(index[0], freq=freq), "target": np.asarray(values, dtype=np.float64).T.copy(),
             "item_id": item_id}
    return [entry]


def dataset_to_frames(dataset: Iterable[dict], columns: Optional[Sequence] = None) -> list[pd.DataFrame]:
    """Wide frames (rows = time) for the entries of a multivariate GluonTS dataset."""
    frames = []
    for entry in dataset:
        target = np.atleast_2d(np.asarray(entry["target"], dtype=np.float64))
        start = entry["start"]
        index = pd.period_range(start, periods=target.shape[1], freq=start.freq).to_timestamp()
        frames.append(pd.DataFrame(target.T, index=index, columns=columns))
    return frames


def to_multivariate(dataset, target_dim: Optional[int] = None):
    """Group a univariate GluonTS dataset (one entry per series, as ``PandasDataset`` or
    ``ListDataset`` give) into one multivariate entry with GluonTS' ``MultivariateGrouper``."""
    from gluonts.dataset.multivariate_grouper import MultivariateGrouper

    n = len(list(dataset)) if target_dim is None else target_dim
    return MultivariateGrouper(max_target_dim=n)(dataset)


def to_univariate(dataset) -> list[dict]:
    """Split multivariate entries into one univariate entry per series (for univariate models such
    as DeepAR); entry ``i * D + d`` is series ``d`` of entry ``i``."""
    out = []
    for i, entry in enumerate(dataset):
        for d, row in enumerate(np.atleast_2d(np.asarray(entry["target"]))):
            out.append({"start": entry["start"], "target": row, "item_id": f"{entry.get('item_id', i)}:{d}"})
    return out


def rolling_split(df: pd.DataFrame, prediction_length: int, n_windows: int, freq: Optional[str] = None):
    """TimeGrad's evaluation protocol: the last ``n_windows`` non-overlapping windows of
    ``prediction_length`` are the test set. Returns ``(train_ds, test_ds, freq)``: training data
    end before the first test window; test entry k holds all history up to the end of window k
    (``make_evaluation_predictions`` cuts the last ``prediction_length`` off as the target)."""
    from gluonts.dataset.common import ListDataset

    values, _, index, freq = frame_index(df, freq, stacklevel=3)
    n_train = len(values) - n_windows * prediction_length
    if n_windows < 1 or n_train < 2 * prediction_length:
        raise ValueError(f"{len(values)} rows cannot hold {n_windows} test windows of {prediction_length} "
                         "plus a training part; use fewer windows or a shorter horizon")
    freq = period_freq(freq)
    start = pd.Period(index[0], freq=freq)
    make = lambda end, i: {"start": start, "target": values[:end].T.astype(np.float32), "item_id": str(i)}
    train = ListDataset([make(n_train, 0)], freq=freq, one_dim_target=False)
    test = ListDataset([make(n_train + (k + 1) * prediction_length, k) for k in range(n_windows)], freq=freq,
                       one_dim_target=False)
    return train, test, freq


def validation_split(dataset, prediction_length: int, n_windows: int) -> tuple[list[dict], list[dict]]:
    """Hold out validation windows as :func:`rolling_split` holds out test windows: the last
    ``n_windows`` non-overlapping windows of ``prediction_length`` steps of every entry of
    ``dataset`` (GluonTS entries, target (T,) or (D, T)). Returns ``(train, validation)`` as lists
    of entries: each training entry ends before its first validation window; validation entry k
    of an entry holds its history up to the end of window k (an estimator's validation loss is
    taken on the last ``prediction_length`` steps of each, GluonTS' ``ValidationSplitSampler``).
    So a model can keep its weights of the epoch that forecasts these windows best, never seeing
    the test windows that follow them."""
    check_dataset(dataset, "dataset")
    prediction_length = check_whole("prediction_length", prediction_length)
    n_windows = check_whole("n_windows", n_windows)
    train, validation = [], []
    for i, entry in enumerate(dataset):
        target = np.asarray(entry["target"])
        n_train = target.shape[-1] - n_windows * prediction_length
        item = entry.get("item_id", str(i))
        if n_train < 2 * prediction_length:
            raise ValueError(f"entry {item!r} has {target.shape[-1]} steps, too few for {n_windows} validation windows "
                             f"of {prediction_length} plus a training part; use fewer validation windows")
        train.append({**entry, "target": target[..., :n_train].copy()})
        validation += [{**entry, "target": target[..., :n_train + (k + 1) * prediction_length].copy(),
                        "item_id": f"{item}:val{k}"} for k in range(n_windows)]
    return train, validation


@dataclass(frozen=True)
class Benchmark:
    read: object            # path -> wide frame
    prediction_length: int  # horizon of the published protocol
    n_windows: int          # rolling test windows at the end of the series


BENCHMARKS = {
    "exchange_rate": Benchmark(read_exchange_rate, 30, 5),  # TimeGrad / GP-copula protocol
    "etth1": Benchmark(read_etth1, 24, 7),                   # hourly, as TimeGrad's electricity/traffic
}


def load_benchmark(name: str, path: Optional[str | os.PathLike] = None):
    """``(frame, train_ds, test_ds, freq, prediction_length)`` for a benchmark of :data:`BENCHMARKS`."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown forecasting benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[name]
    df = spec.read(path)
    train, test, freq = rolling_split(df, spec.prediction_length, spec.n_windows)
    return df, train, test, freq, spec.prediction_length
