import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import multidiff
from multidiff.tasks.imputation import Imputer



def test_impute_fills_numeric_gaps_keeps_the_rest_and_does_not_mutate(aqi_week, tiny_imputer):
    df = aqi_week.copy()
    df["site"] = pd.Categorical(["beijing"] * len(df))  # a non-numeric column stays untouched
    df.loc[df.index[3], "site"] = None
    before = df.copy(deep=True)
    res = tiny_imputer.impute(df, n_samples=5, quantiles=(0.05, 0.5, 0.95), return_result=True, return_samples=True)
    pd.testing.assert_frame_equal(df, before)
    assert res.filled.index.equals(df.index) and list(res.filled.columns) == list(df.columns)
    assert not res.filled[aqi_week.columns].isna().any().any()
    assert res.filled["site"].isna().sum() == 1
    observed = aqi_week.notna().to_numpy()
    assert np.array_equal(res.filled[aqi_week.columns].to_numpy()[observed], aqi_week.to_numpy()[observed])
    assert res.samples.shape == (5, len(df), 6)
    lo, mid, hi = (res.quantiles[q][aqi_week.columns].to_numpy() for q in (0.05, 0.5, 0.95))
    assert (lo <= mid + 1e-9).all() and (mid <= hi + 1e-9).all()
    assert res.imputed_mask[aqi_week.columns].to_numpy().sum() == aqi_week.isna().to_numpy().sum()


def test_frame_without_nan_comes_back_as_an_equal_copy(aqi_week, tiny_imputer):
    full = aqi_week.interpolate(limit_direction="both")
    out = tiny_imputer.impute(full)
    pd.testing.assert_frame_equal(out, full)
    assert out is not full
    out2 = multidiff.tasks.impute(full)
    pd.testing.assert_frame_equal(out2, full)


@pytest.mark.parametrize("make_bad,message", [
    (lambda df: df.to_numpy()[:, 0], "Expected 2D array"),  # fit takes array-likes, as scikit-learn
    (lambda df: df.iloc[:0], "empty"),
    (lambda df: df.assign(**{df.columns[0]: np.nan}), "entirely NaN"),
    (lambda df: df.replace(df.iloc[0, 0], np.inf), "contain inf"),
    (lambda df: pd.concat([df, df.iloc[:2]]), "duplicated"),
    (lambda df: df.iloc[:5], "fewer than one window"),
    (lambda df: df.iloc[::-1].iloc[list(range(0, 50)) + list(range(100, 168)) + list(range(50, 100))], "not sorted"),
])
def test_bad_input_gets_a_clear_error(aqi_week, make_bad, message, tiny):
    with pytest.raises((TypeError, ValueError), match=message):
        Imputer(**tiny).fit(make_bad(aqi_week))


def test_transform_checks_columns_and_fit_state(aqi_week, tiny_imputer, tiny):
    with pytest.raises(ValueError, match="differ from those seen in fit"):
        tiny_imputer.impute(aqi_week.iloc[:, :4])
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        tiny_imputer.impute(aqi_week.to_numpy().tolist())
    with pytest.raises(RuntimeError, match="not fitted"):
        Imputer().impute(aqi_week)
    with pytest.raises(ValueError, match="mask_strategy"):
        Imputer(**{**tiny, "mask_strategy": "blocks"}).fit(aqi_week)


def test_save_load_gives_identical_samples(tmp_path, aqi_week, tiny_imputer):
    tiny_imputer.save(tmp_path / "model")
    loaded = Imputer.load(tmp_path / "model")
    a = tiny_imputer.impute(aqi_week, return_result=True, return_samples=True).samples
    b = loaded.impute(aqi_week, return_result=True, return_samples=True).samples
    assert np.array_equal(a, b)
    assert loaded.get_params() == tiny_imputer.get_params()
    with pytest.raises(FileNotFoundError, match="not a multidiff checkpoint"):
        Imputer.load(tmp_path / "nowhere")


def test_sklearn_clone_and_pipeline(aqi_week, tiny):
    imp = Imputer(**tiny)
    twin = clone(imp)
    assert twin.get_params() == imp.get_params() and twin is not imp
    pipe = Pipeline([("log", FunctionTransformer(np.log1p, np.expm1, check_inverse=False)), ("impute", Imputer(**tiny))])
    out = pipe.fit_transform(aqi_week)
    assert out.shape == aqi_week.shape and not np.isnan(np.asarray(out, dtype=float)).any()
    arr = Imputer(**tiny).fit_transform(aqi_week.to_numpy())
    assert isinstance(arr, np.ndarray) and not np.isnan(arr).any()


def test_long_frame_is_windowed_and_short_frame_is_one_window(aqi_week, tiny_imputer):
    short = aqi_week.iloc[:7]
    assert not tiny_imputer.impute(short).isna().any().any()
    assert len(tiny_imputer.impute(aqi_week)) == len(aqi_week)
