import numpy as np
import pandas as pd
import pytest

from multidiff.datasets.frames import numeric_frame, with_values


def test_text_columns_of_numbers_are_converted_and_written_back_as_floats():
    df = pd.DataFrame({"a": [1, 2, 3],
                       "s": ["1.5", "", None],                               # numbers as text, blank = missing
                       "o": pd.Series([0.5, None, 2.0], dtype=object),       # python floats with None
                       "st": pd.array(["-1", None, "2e3"], dtype="string")})
    frame = numeric_frame(df)
    assert frame.columns == ["a", "s", "o", "st"] and frame.skipped == []
    np.testing.assert_array_equal(frame.values, [[1, 1.5, 0.5, -1], [2, np.nan, np.nan, np.nan],
                                                 [3, np.nan, 2.0, 2000]])
    before = df.copy()
    out = with_values(df, frame, np.nan_to_num(frame.values, nan=7.0))
    pd.testing.assert_frame_equal(df, before)  # the input is not modified
    assert out["s"].tolist() == [1.5, 7.0, 7.0] and out["s"].dtype == np.float64


def test_numbers_mixed_with_text_raise_and_plain_text_is_skipped():
    df = pd.DataFrame({"t": ["2020-01-01", "2020-01-02", "2020-01-03"], "x": [1.0, None, 3.0],
                       "station": ["1", "2", "north"]})
    with pytest.raises(ValueError, match=r"column 'station' holds values that are not numbers \(e\.g\. 'north'"
                                         r".*select_dtypes\('number'\)"):
        numeric_frame(df, time_column="t")
    plain = numeric_frame(df.drop(columns="station").assign(name=["a", "b", "c"]))  # text, no numbers: skipped
    assert plain.columns == ["x"] and plain.skipped == ["t", "name"]
    frame = numeric_frame(df.drop(columns="station"), time_column="t")
    assert frame.columns == ["x"] and frame.skipped == [] and frame.time[0] == pd.Timestamp("2020-01-01")


def test_bool_datetime_and_category_columns_are_skipped_and_kept():
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0], "flag": [True, False, True],
                       "when": pd.date_range("2021-01-01", periods=3), "kind": pd.Categorical(["a", "b", "a"]),
                       "maybe": pd.Series([True, None, False], dtype=object)})
    frame = numeric_frame(df)
    assert frame.columns == ["x"] and frame.skipped == ["flag", "when", "kind", "maybe"]
    out = with_values(df, frame, np.array([[1.0], [2.0], [3.0]]))
    pd.testing.assert_frame_equal(out.drop(columns="x"), df.drop(columns="x"))
    assert out["x"].tolist() == [1.0, 2.0, 3.0] and np.isnan(df.loc[1, "x"])


def test_duplicated_column_labels_raise_with_the_fix():
    df = pd.DataFrame([[1.0, 2.0, 3.0]], columns=["a", "b", "a"])
    with pytest.raises(ValueError, match=r"\['a'\] occur more than once.*duplicated\(\)"):
        numeric_frame(df)


def test_with_values_keeps_multiindex_columns_and_never_mutates_the_input():
    cols = pd.MultiIndex.from_tuples([("pm25", "s1"), ("pm25", "s2"), ("name", "s1")])
    df = pd.DataFrame([[1, np.nan, "x"], [np.nan, 4, "y"]], columns=cols)
    before = df.copy()
    frame = numeric_frame(df[[("pm25", "s1"), ("pm25", "s2")]])
    assert frame.columns == [("pm25", "s1"), ("pm25", "s2")]
    assert numeric_frame(df).skipped == [("name", "s1")]
    out = with_values(df, frame, np.array([[1.0, 2.0], [3.0, 4.0]]))
    pd.testing.assert_frame_equal(df, before)
    assert out.columns.equals(cols) and out[("pm25", "s2")].tolist() == [2.0, 4.0]
    assert out[("name", "s1")].tolist() == ["x", "y"]
    with pytest.raises(ValueError, match="values have shape"):
        with_values(df, frame, np.zeros((2, 3)))
