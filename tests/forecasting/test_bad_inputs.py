"""Bad and edge inputs to the forecasting entry points, one table per entry point (row format:
docs/gen_refusals.py; docs/refusals.md is built from these tables). Models train for 2 batches."""
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.datasets.gluonts_adapters import frame_to_dataset
from multidiff.tasks.forecasting import CSDIForecastEstimator, TimeGradEstimator, forecast

TINY = dict(max_time=None, epochs=1, num_batches_per_epoch=2, batch_size=4, context_length=8, n_samples=16)
H = 3


def _frame(freq="h", n=40, start="2000-01-01", level=0.0, seed=0):
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0.5, 1.0, n))  # drifts to ~20: far from 0 in steps of ~1
    return pd.DataFrame({"a": level + walk, "b": rng.normal(size=n)}, index=pd.date_range(start, periods=n, freq=freq))


def _fc(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return forecast(df, kw.pop("horizon", H), **{**TINY, **kw})


def _offset_kept(r):
    """1e9 + a random walk: the forecast stays at the walk's end with a band, as it does without the 1e9
    (in float32 the walk was rounded away: median exactly 1e9, band width 0)."""
    last = r.history["a"].iloc[-1]
    assert np.all(np.abs(r[0.5]["a"] - last) < 6), (r[0.5]["a"].tolist(), last)
    assert np.all(r[0.9]["a"] - r[0.1]["a"] > 0.1)
    assert np.isfinite(r.samples).all()


def _direct(df, model="timegrad"):
    """An estimator trained and asked directly (not through forecast()) on ``df``: ``(history, forecast)``."""
    ds, freq = frame_to_dataset(df)
    if model == "timegrad":
        est = TimeGradEstimator(freq, H, 2, context_length=8, batch_size=4, num_batches_per_epoch=2, epochs=1,
                                num_parallel_samples=16, seed=0)
    else:
        est = CSDIForecastEstimator(freq, H, 2, context_length=8, batch_size=4, num_batches_per_epoch=2, epochs=1,
                                    max_time=None, num_parallel_samples=16, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = est.train(ds)
        torch.manual_seed(0)
        return df, next(iter(predictor.predict(ds)))


def _float32_warnings(_):
    """The warnings of training on a GluonTS ListDataset (float32 targets) at 1e9 + a random walk."""
    from gluonts.dataset.common import ListDataset

    df = _frame(level=1e9)
    ds = ListDataset([{"start": pd.Period(df.index[0], freq="h"), "target": df.to_numpy().T}], freq="h",
                     one_dim_target=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TimeGradEstimator("h", H, 2, context_length=8, batch_size=4, num_batches_per_epoch=1, epochs=1,
                          seed=0).train(ds)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _direct_offset_kept(result):
    """1e9 + a random walk through the estimator and predictor themselves: the last value lies in the
    forecast's 10-90 % band (of width > 0) around a median near it, and the samples keep their digits (in
    float32 they fell on multiples of 64: the median was exactly 1e9, the band of width 0). The model
    trained for 2 batches, so the band is wide (~50; ~600 for the same walk at 0)."""
    df, fc = result
    last = df["a"].iloc[-1]
    samples = fc.samples[..., 0]
    low, median, high = np.quantile(samples, [0.1, 0.5, 0.9], axis=0)
    assert np.all(np.abs(median - last) < 20), (median - last)
    assert np.all((low < last) & (last < high)) and np.all(high - low > 1), (low - last, high - last)
    assert len(np.unique(samples)) > samples.size // 2 and np.isfinite(fc.samples).all()


def _continues(first: str, freq: str):
    """The forecast's index continues the frame's: ``first`` is the step after its last row."""
    def check(r):
        expected = pd.date_range(first, periods=H, freq=freq)
        assert r.mean.index.equals(expected), (r.mean.index, expected)
        assert r.mean.index[0] > r.history.index[-1]
        assert np.isfinite(r.samples).all() and r.samples.shape == (16, H, 2)
    return check


def _time_col(values):
    df = _frame().reset_index(names="when")
    df["when"] = values
    return df


_dates = [str(t) for t in pd.date_range("2000-01-01", periods=40, freq="h")]
_nat = pd.Series(pd.date_range("2000-01-01", periods=40, freq="h"))
_nat[5] = pd.NaT
_all_nan = _frame().assign(b=np.nan)
_inf = _frame().assign(b=np.r_[np.inf, np.zeros(39)])
_shuffled = _frame().iloc[np.random.default_rng(0).permutation(40)]
_gap = _frame().drop(_frame().index[10])
_late_nan = _frame()
_late_nan.iloc[-10:] = np.nan

# calendar frequencies: (alias, what the rows are, the first forecast date)
_CALENDAR = [("MS", "month-start rows", "2003-05-01"), ("QE", "quarter-end rows", "2010-03-31"),
             ("QS", "quarter-start rows", "2010-01-01"), ("YE", "year-end rows", "2040-12-31"),
             ("YS", "year-start rows", "2040-01-01"), ("BME", "business-month-end rows", "2003-05-30"),
             ("W-WED", "weekly rows on Wednesdays", "2000-10-11"),
             ("B", "business-day rows (Monday after a Friday)", "2000-02-28")]

CASES = {
    "forecast(df, horizon)": [
        dict(id="large-offset", given="a series at 1e9 plus a random walk (steps of 1)",
             run=lambda _: _fc(_frame(level=1e9)), returns="the walk forecast around its last value, a band > 0",
             check=_offset_kept),
        dict(id="freq-ME", given="month-end rows (freq 'ME')", run=lambda _: _fc(_frame("ME")),
             returns="months continued: 2003-05-31, ...", check=_continues("2003-05-31", "ME")),
        dict(id="freq-M", given="month-end rows, legacy alias freq='M'",
             run=lambda _: _fc(_frame("ME"), freq="M"), returns="months continued", check=_continues("2003-05-31", "ME")),
        *[dict(id=f"freq-{alias}", given=f"{rows} ('{alias}')", run=lambda _, a=alias: _fc(_frame(a)),
               returns=f"{rows} continued: {first}, ...", check=_continues(first, alias))
          for alias, rows, first in _CALENDAR],
        dict(id="freq-SME", given="semi-month rows ('SME'), which pandas periods lack",
             run=lambda _: _fc(_frame("SME")), raises=ValueError, words=["SME", "cannot be forecast", "resample"]),
        dict(id="not-a-frame", given="a numpy array", run=lambda _: _fc(_frame().to_numpy()),
             raises=TypeError, words=["DataFrame"]),
        dict(id="horizon-0", given="horizon=0", run=lambda _: _fc(_frame(), horizon=0), raises=ValueError,
             words=["horizon", ">= 1", "got 0"]),
        dict(id="horizon-float", given="horizon=2.5", run=lambda _: _fc(_frame(), horizon=2.5), raises=ValueError,
             words=["horizon", "whole number"]),
        dict(id="empty", given="an empty frame", run=lambda _: _fc(_frame().iloc[:0]), raises=ValueError,
             words=["empty"]),
        dict(id="all-nan-column", given="a column that is entirely NaN", run=lambda _: _fc(_all_nan),
             raises=ValueError, words=["entirely NaN", "drop"]),
        dict(id="inf", given="inf in a column", run=lambda _: _fc(_inf), raises=ValueError, words=["inf", "replace"]),
        dict(id="context-all-nan", given="the last context_length rows all NaN", run=lambda _: _fc(_late_nan),
             raises=ValueError, words=["context", "NaN"]),
        dict(id="no-timestamps", given="a RangeIndex and no time_column", run=lambda _: _fc(_frame().reset_index(drop=True)),
             raises=ValueError, words=["timestamps", "time_column"]),
        dict(id="unsorted", given="rows out of time order", run=lambda _: _fc(_shuffled), raises=ValueError,
             words=["sort"]),
        dict(id="irregular", given="a missing row (irregular timestamps)", run=lambda _: _fc(_gap, freq="h"),
             raises=ValueError, words=["irregular", "asfreq"]),
        dict(id="time-column-unparsable", given="time_column with the text 'garbage' in one row",
             run=lambda _: _fc(_time_col(_dates[:5] + ["garbage"] + _dates[6:]), time_column="when"),
             raises=ValueError, words=["'when'", "not timestamps", "garbage", "row 5"]),
        dict(id="time-column-nat", given="time_column with a missing timestamp (NaT)",
             run=lambda _: _fc(_time_col(_nat), time_column="when"), raises=ValueError,
             words=["missing timestamps (NaT)", "drop"]),
        dict(id="index-nat", given="a DatetimeIndex with a missing timestamp (NaT)",
             run=lambda _: _fc(_frame().set_axis(pd.DatetimeIndex(_nat))), raises=ValueError,
             words=["DatetimeIndex", "missing timestamps (NaT)"]),
        dict(id="time-column-integers", given="time_column of integers 0, 1, 2 ... (a step counter)",
             run=lambda _: _fc(_time_col(np.arange(40)), time_column="when"), raises=ValueError,
             words=["holds numbers", "not timestamps", "1970"]),
        dict(id="time-column-absent", given="time_column naming no column", run=lambda _: _fc(_frame(), time_column="t"),
             raises=ValueError, words=["'t'", "not in the frame"]),
        dict(id="quantile-1", given="quantiles=(0.5, 1.0)", run=lambda _: _fc(_frame(), quantiles=(0.5, 1.0)),
             raises=ValueError, words=["quantiles", "between 0 and 1"]),
        dict(id="unknown-model", given="model='prophet'", run=lambda _: _fc(_frame(), model="prophet"),
             raises=ValueError, words=["model must be one of", "csdi"]),
        dict(id="bad-freq", given="freq='fortnightly'", run=lambda _: _fc(_frame(), freq="fortnightly"),
             raises=ValueError, words=["not a pandas frequency"]),
        dict(id="wrong-predictor", given="predictor= an estimator, not a trained predictor",
             run=lambda _: _fc(_frame(), predictor=CSDIForecastEstimator("h", H, 2)), raises=TypeError,
             words=["trained", "predictor"]),
    ],
    "CSDIForecastEstimator(...).train(data)": [
        dict(id="dataset-freq-pair", given="the (dataset, freq) pair frame_to_dataset returns",
             run=lambda _: CSDIForecastEstimator("h", H, 2).train(frame_to_dataset(_frame())), raises=TypeError,
             words=["(dataset, freq) pair", "ds, freq = frame_to_dataset(df)"]),
        dict(id="dataframe", given="a DataFrame", run=lambda _: CSDIForecastEstimator("h", H, 2).train(_frame()),
             raises=TypeError, words=["DataFrame", "frame_to_dataset", "forecast(df"]),
        dict(id="wrong-target-dim", given="3 series to an estimator built for 2",
             run=lambda _: CSDIForecastEstimator("h", H, 3).train(frame_to_dataset(_frame())[0]), raises=ValueError,
             words=["2 series", "target_dim=2"]),
        dict(id="too-short", given="fewer steps than context + horizon",
             run=lambda _: CSDIForecastEstimator("h", H, 2).train(frame_to_dataset(_frame().iloc[:5])[0]),
             raises=ValueError, words=["5 time steps", "shorter context_length"]),
        dict(id="other-freq", given="daily entries to an hourly estimator",
             run=lambda _: CSDIForecastEstimator("h", H, 2).train(frame_to_dataset(_frame("D"))[0]),
             raises=ValueError, words=["frequency 'D'", "freq='h'"]),
        dict(id="large-offset", given="a series at 1e9 plus a random walk (steps of 1), trained and predicted "
             "directly", run=lambda _: _direct(_frame(level=1e9), "csdi"),
             returns="the walk forecast around its last value, a band > 0", check=_direct_offset_kept),
        dict(id="freq-ME", given="freq='ME' (a timestamp alias)", run=lambda _: CSDIForecastEstimator("ME", H, 2).freq,
             returns="the period alias 'M' that GluonTS dates entries by", check=lambda f: f == "M" or pytest.fail(f)),
        dict(id="freq-SME", given="freq='SME'", run=lambda _: CSDIForecastEstimator("SME", H, 2), raises=ValueError,
             words=["SME", "cannot be forecast"]),
        dict(id="horizon-0", given="prediction_length=0", run=lambda _: CSDIForecastEstimator("h", 0, 2),
             raises=ValueError, words=["prediction_length", ">= 1"]),
    ],
    "TimeGradEstimator(...).train(data)": [
        dict(id="dataset-freq-pair", given="the (dataset, freq) pair frame_to_dataset returns",
             run=lambda _: TimeGradEstimator("h", H, 2).train(frame_to_dataset(_frame())), raises=TypeError,
             words=["(dataset, freq) pair"]),
        dict(id="large-offset", given="a series at 1e9 plus a random walk (steps of 1), trained and predicted "
             "directly", run=lambda _: _direct(_frame(level=1e9)),
             returns="the walk forecast around its last value, a band > 0", check=_direct_offset_kept),
        dict(id="float32-offset", given="a ListDataset (float32 targets) of 1e9 plus a random walk",
             run=_float32_warnings, returns="a UserWarning: float32 has rounded the steps; keep the target float64",
             check=lambda msgs: any("float32" in m and "keep the target float64" in m for m in msgs) or pytest.fail(str(msgs))),
        dict(id="freq-QS", given="freq='QS' (a timestamp alias)", run=lambda _: TimeGradEstimator("QS", H, 2).freq,
             returns="the period alias 'Q-DEC'", check=lambda f: f == "Q-DEC" or pytest.fail(f)),
    ],
}


def test_bad_input(bad_input, check_case):
    check_case(bad_input)


def test_inputs_are_not_mutated():
    """A forecast leaves the frame as it was, also when it is shifted to its level or re-dated."""
    df = _frame("ME", level=1e9)
    before = df.copy()
    _fc(df)
    pd.testing.assert_frame_equal(df, before)
