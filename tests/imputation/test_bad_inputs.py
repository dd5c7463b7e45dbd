"""Bad and edge inputs to the imputation entry points, one table per entry point (row format:
docs/gen_refusals.py; docs/refusals.md is built from these tables). Zero-shot (no training) but
for the one row that needs a CSDI model fitted from scratch (three optimiser steps)."""
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from multidiff.tasks.imputation import Imputer, impute

ZERO_SHOT = dict(max_time=0, n_samples=4, sampler_steps=3, progress=False)


def _frame(rows=80, seed=0) -> pd.DataFrame:
    df = pd.DataFrame(np.random.default_rng(seed).standard_normal((rows, 3)).cumsum(0), columns=list("abc"))
    df.iloc[[5, 17, 40], 0] = np.nan
    return df


BASE = _frame()


@pytest.fixture(scope="module")
def ctx():
    """A zero-shot Imputer fitted on BASE, and a CSDI one fitted on values in 0..10."""
    train = pd.DataFrame(np.random.default_rng(0).uniform(0, 10, (60, 2)), columns=["a", "b"])
    train.iloc[5:8, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"zero_shot": Imputer(**ZERO_SHOT).fit(BASE),
                "csdi": Imputer(pretrained=None, max_time=None, max_steps=3, window=8, self_check=0,
                                progress=False).fit(train)}


def _irregular() -> pd.DataFrame:
    t = np.r_[0:20, 100:120].astype(float)
    df = pd.DataFrame({"a": t, "b": 2 * t}, index=pd.Timestamp("2020") + pd.to_timedelta(t, unit="h"))
    df.iloc[19:21, 0] = np.nan
    return df


def _far() -> pd.DataFrame:
    new = pd.DataFrame({"a": np.linspace(100, 110, 40), "b": np.linspace(100, 110, 40)})
    new.iloc[18:22, 0] = np.nan
    return new


def _transform_quietly(imp, X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = imp.transform(X)
    return out, [str(w.message) for w in caught]


def _follows_the_observed(result):
    """Between the observed 104.36 and 105.64, never clamped to the 0..10 seen in fit; warned."""
    out, messages = result
    gap = out.iloc[18:22, 0].to_numpy()
    assert (gap > 103.0).all() and (gap < 107.0).all(), gap
    assert any("far outside what fit saw" in m and "refit" in m for m in messages), messages


def _empty_column_warned(result):
    out, messages = result
    assert out["b"].notna().all()
    assert any("no observed value in this frame" in m and "'b'" in m for m in messages), messages


def _int_kept(out):
    assert out["n"].dtype == np.int64 and out["n"].tolist() == list(range(80))
    assert out["a"].notna().all()


def _monthly(out):
    assert out.notna().all().all() and isinstance(out.index, pd.DatetimeIndex)


CASES = {
    "impute(df)": [
        dict(id="irregular-time", given="a DatetimeIndex with an 80-hour gap between two rows (was imputed by "
             "row position: 46.8 and 74.3 for a truth of 19 and 100)", run=lambda c: impute(_irregular(), **ZERO_SHOT),
             raises=ValueError, words=["not evenly spaced", "3 days 09:00:00", "resample", "reset_index"]),
        dict(id="monthly", given="a month-start DatetimeIndex (calendar steps of 28-31 days)",
             run=lambda c: impute(BASE.set_index(pd.date_range("2020", periods=80, freq="MS")), **ZERO_SHOT),
             returns="the frame filled, index kept", check=_monthly),
        dict(id="int-column", given="an int64 column with nothing missing beside a column with gaps (came back "
             "float64)", run=lambda c: impute(BASE.assign(n=np.arange(80)), **ZERO_SHOT),
             returns="the int64 column unchanged, dtype kept", check=_int_kept),
        dict(id="empty", given="a frame with no rows", run=lambda c: impute(BASE.iloc[:0], **ZERO_SHOT),
             raises=ValueError, words=["empty", "at least one row"]),
        dict(id="no-numeric", given="only text columns", run=lambda c: impute(pd.DataFrame({"s": ["x", "y"] * 10})),
             raises=ValueError, words=["no numeric columns", "pd.to_numeric"]),
        dict(id="array", given="a numpy array", run=lambda c: impute(BASE.to_numpy()), raises=TypeError,
             words=["expected a pandas DataFrame", "pd.DataFrame("]),
        dict(id="inf", given="an inf value", run=lambda c: impute(BASE.assign(b=np.r_[np.inf, BASE.b[1:]])),
             raises=ValueError, words=["contain inf", "df.replace"]),
        dict(id="all-nan-column", given="a column with no observed value", run=lambda c: impute(BASE.assign(d=np.nan)),
             raises=ValueError, words=["entirely nan", "drop them"]),
        dict(id="duplicate-labels", given="two columns named alike",
             run=lambda c: impute(pd.concat([BASE[["a"]], BASE[["a"]]], axis=1)), raises=ValueError,
             words=["occur more than once", "rename"]),
        dict(id="duplicate-times", given="a DatetimeIndex with repeated timestamps",
             run=lambda c: impute(BASE.set_index(pd.DatetimeIndex(["2020"] * 80))), raises=ValueError,
             words=["duplicated", "groupby"]),
        dict(id="n-samples-0", given="n_samples=0", run=lambda c: impute(BASE, n_samples=0, max_time=0),
             raises=ValueError, words=["n_samples", ">= 1"]),
        dict(id="quantile-2", given="quantiles=(2,)", run=lambda c: impute(BASE, quantiles=(2,), return_result=True,
                                                                            **ZERO_SHOT),
             raises=ValueError, words=["quantiles must lie in [0, 1]"]),
        dict(id="window-0", given="window=0", run=lambda c: impute(BASE, window=0, **ZERO_SHOT), raises=ValueError,
             words=["window must be", ">= 2"]),
        dict(id="max-time-negative", given="max_time=-1", run=lambda c: impute(BASE, max_time=-1), raises=ValueError,
             words=["max_time", "[0, inf)"]),
        dict(id="pretrained-3", given="pretrained=3", run=lambda c: impute(BASE, pretrained=3), raises=ValueError,
             words=["pretrained must be", "None"]),
        dict(id="pretrained-missing", given="pretrained= a folder that does not exist",
             run=lambda c: impute(BASE, pretrained="no/such/folder", **ZERO_SHOT), raises=FileNotFoundError,
             words=["not a multidiff checkpoint"]),
    ],
    "Imputer.transform(X)": [
        dict(id="far-outside-fit", given="new values around 100-110 for a CSDI model fitted on 0-10 (were clamped "
             "to 14.88)", run=lambda c: _transform_quietly(c["csdi"], _far()),
             returns="values between the observed neighbours, and a warning", check=_follows_the_observed),
        dict(id="far-outside-fit-pretrained", given="the same with the pretrained network (zero-shot fit on 0-10)",
             run=lambda c: _transform_quietly(Imputer(**ZERO_SHOT).fit(_far().assign(a=np.linspace(0, 10, 40))),
                                              _far()),
             returns="values between the observed neighbours, and a warning", check=_follows_the_observed),
        dict(id="column-empty-now", given="a column with no observed value at transform time (was filled with a "
             "flat value and no word)", run=lambda c: _transform_quietly(c["zero_shot"], BASE.assign(b=np.nan)),
             returns="filled, with a warning naming the column", check=_empty_column_warned),
        dict(id="other-columns", given="columns other than those seen in fit",
             run=lambda c: c["zero_shot"].transform(BASE.rename(columns={"c": "z"})), raises=ValueError,
             words=["feature names", "z"]),
        dict(id="fewer-columns", given="an array with 2 columns for a 3-column fit",
             run=lambda c: c["zero_shot"].transform(BASE.to_numpy()[:, :2]), raises=ValueError,
             words=["2 features", "expecting 3"]),
        dict(id="not-fitted", given="an Imputer never fitted", run=lambda c: Imputer().transform(BASE),
             raises=NotFittedError, words=["not fitted", "fit("]),
    ],
}


def test_bad_input(bad_input, check_case, ctx):
    check_case(bad_input, ctx)


def test_inputs_are_not_mutated(ctx):
    before = BASE.copy()
    impute(BASE, **ZERO_SHOT)
    ctx["zero_shot"].transform(BASE)
    pd.testing.assert_frame_equal(BASE, before)
