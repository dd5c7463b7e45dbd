"""Wide DataFrame <-> GluonTS adapters and the real benchmark files."""
import numpy as np
import pandas as pd
import pytest

from multidiff.datasets import gluonts_adapters as ga


def _frame(n=40, d=3, freq="h"):
    idx = pd.date_range("2021-03-01", periods=n, freq=freq)
    return pd.DataFrame(np.arange(n * d, dtype=float).reshape(n, d), index=idx, columns=list("abc")[:d])


def test_exchange_rate_reader(data_dir):
    df = ga.read_exchange_rate(data_dir / "exchange_rate")
    assert df.shape == (7588, 8) and list(df.columns) == ga.EXCHANGE_COLUMNS
    assert df.index.freqstr == "B" and df.index[0] == pd.Timestamp("1990-01-01")
    assert df.iloc[0, 0] == pytest.approx(0.7855) and not df.isna().any().any()


def test_etth1_reader(data_dir):
    df = ga.read_etth1(data_dir / "ett")
    assert df.shape == (17420, 7) and df.columns[-1] == "OT" and df.index.freqstr == "h"


def test_exchange_benchmark_protocol(data_dir):
    df, train, test, freq, h = ga.load_benchmark("exchange_rate", data_dir / "exchange_rate")
    assert (freq, h) == ("B", 30)
    (entry,) = list(train)
    assert entry["target"].shape == (8, 7588 - 5 * 30)
    ends = [e["target"].shape[1] for e in test]
    assert ends == [7588 - 30 * k for k in (4, 3, 2, 1, 0)]  # last 5 rolling windows
    np.testing.assert_allclose(list(test)[-1]["target"][:, -1], df.iloc[-1].to_numpy(), rtol=1e-6)


def test_frame_round_trip_keeps_nan_and_does_not_mutate():
    df = _frame()
    df.iloc[5, 1] = np.nan
    before = df.copy()
    ds, freq = ga.frame_to_dataset(df)
    assert freq == "h"
    (back,) = ga.dataset_to_frames(ds, columns=df.columns)
    pd.testing.assert_frame_equal(back, df, check_freq=False)
    pd.testing.assert_frame_equal(df, before)


def test_time_column_and_infer_freq():
    df = _frame(freq="D").rename_axis("when").reset_index()
    ds, freq = ga.frame_to_dataset(df, time_column="when")
    assert freq == "D" and list(ds)[0]["target"].shape == (3, 40)


def test_to_multivariate_groups_univariate_series():
    from gluonts.dataset.common import ListDataset

    uni = ListDataset([{"start": pd.Period("2020-01-01", "D"), "target": np.arange(10.0) + i} for i in range(3)],
                      freq="D")
    (entry,) = list(ga.to_multivariate(uni))
    assert entry["target"].shape == (3, 10)


@pytest.mark.parametrize("make, message", [
    (lambda df: df.reset_index(drop=True), "needs timestamps"),
    (lambda df: df.iloc[::-1], "must increase"),
    (lambda df: df.drop(df.index[[3, 7, 20]]), "cannot tell the frequency"),
])
def test_bad_timestamps_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        ga.frame_to_dataset(make(_frame()))


def test_irregular_timestamps_for_given_freq():
    df = _frame().drop(_frame().index[7])
    with pytest.raises(ValueError, match=r"irregular for freq='h': row 7.*asfreq"):
        ga.frame_to_dataset(df, freq="h")


def test_rolling_split_needs_enough_rows():
    with pytest.raises(ValueError, match="cannot hold 5 test windows"):
        ga.rolling_split(_frame(), prediction_length=10, n_windows=5)
