"""A fitted Imputer on Dask DataFrames (multidiff.tasks.imputation.dask): the result equals the
pandas result on the same frame and seed, on a local cluster of two worker processes
(loopback only), for one long series split by time and for separate series grouped by a key."""
import pickle
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from multidiff.tasks.imputation import Imputer  # noqa: E402
from multidiff.tasks.imputation import dask as mdask  # noqa: E402
from multidiff.tasks.imputation.api import NotFittedError  # noqa: E402
from multidiff.tasks.imputation.sampling import WindowSampler  # noqa: E402

# 2 windows per network call (sample_batch_size // n_samples): partitions need only 11 + 12 rows
# of overlap, so small frames split into several partitions
TINY = dict(window=12, channels=8, layers=1, heads=2, epochs=1, max_steps=4, num_train_steps=10, n_samples=4,
            sample_batch_size=8, progress=False, device="cpu", self_check=0.0, pretrained=None)
NUM = ["x", "y", "z"]


def series(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Three random walks with scattered NaN, a gap of 150 rows across partition edges, NaN at both
    ends, and a text column that is passed through."""
    rng = np.random.default_rng(seed)
    vals = rng.normal(size=(n, 3)).cumsum(0)
    vals[rng.random((n, 3)) < 0.15] = np.nan
    vals[100:250, 0] = np.nan
    vals[:20, 2] = np.nan
    vals[-30:, 1] = np.nan
    df = pd.DataFrame(vals, columns=NUM, index=pd.date_range("2024-01-01", periods=n, freq="h"))
    df["note"] = np.where(np.arange(n) % 7 == 0, "maintenance", "ok")
    return df


def stations(n: int = 150, names=("a", "b", "c", "d")) -> pd.DataFrame:
    """Long format: the rows of four stations interleaved in time, with a unique integer index."""
    parts = []
    for j, s in enumerate(names):
        part = series(n, seed=j + 1)[NUM].reset_index(names="time")
        part.insert(0, "station", s)
        parts.append(part)
    df = pd.concat(parts).sort_values(["time", "station"], kind="stable").reset_index(drop=True)
    return df.set_index(pd.RangeIndex(1000, 1000 + len(df)))


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                       dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def imputer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Imputer(**TINY).fit(series(300, seed=9))


def sync():
    return dask.config.set(scheduler="sync")


def numeric_equal(out: pd.DataFrame, ref: pd.DataFrame):
    assert list(out.columns) == list(ref.columns)
    assert out.index.equals(ref.index)
    np.testing.assert_array_equal(out[NUM].to_numpy(), ref[NUM].to_numpy())  # exactly, not approximately


# ---------------------------------------------------------------------------- one long series
@pytest.mark.slow  # a cluster of two worker processes, each importing torch
def test_time_split_on_a_cluster_equals_the_pandas_result_and_leaves_the_input_alone(client, imputer):
    df = series()
    before = df.copy()
    ddf = dd.from_pandas(df, npartitions=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 'note' column is left as it is
        ref = imputer.impute(df)
        lazy = mdask.impute(ddf, imputer)
    assert lazy.npartitions == 4 and lazy.divisions == ddf.divisions
    out = lazy.compute()
    numeric_equal(out, ref)
    assert not out[NUM].isna().any().any()
    assert (out["note"].astype(str) == df["note"]).all()
    assert (out[NUM].to_numpy()[df[NUM].notna().to_numpy()] == df[NUM].to_numpy()[df[NUM].notna().to_numpy()]).all()
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(ddf.compute(), dd.from_pandas(before, npartitions=4).compute())


@pytest.mark.parametrize("params", [{}, {"stride": 5, "sample_batch_size": 12}, {"base": None, "clip": None}])
def test_time_split_does_not_depend_on_where_partitions_end(imputer, params):
    imp = Imputer(**{**TINY, **params})
    imp.__dict__.update({k: v for k, v in imputer.__dict__.items() if k.endswith("_")})
    df = series()[NUM]
    ref = imp.impute(df, n_samples=3)
    overlap = imp.window_sampler().segment_overlap(len(df), len(NUM), 3)
    cuts = [[df.index[0], df.index[-1]],  # one partition
            [df.index[0], df.index[overlap], df.index[-1]],  # a partition exactly as long as the overlap
            [df.index[0], df.index[123], df.index[250], df.index[251 + overlap], df.index[-1]]]  # uneven
    for divisions in cuts:
        ddf = dd.from_pandas(df, npartitions=1).repartition(divisions=divisions)
        with sync():
            out = mdask.impute(ddf, imp, n_samples=3).compute()
        numeric_equal(out, ref)


def test_a_segment_sends_windows_to_the_network_in_the_groups_of_the_whole_series(imputer, monkeypatch):
    # float32 matmuls of other batch shapes may round differently (1 window vs 208 per call differ in the
    # last bit on this CPU), so a partition computes whole groups of per_call windows, as one machine does
    imp = Imputer(**{**TINY, "sample_batch_size": 12})  # 3 windows per call
    imp.__dict__.update({k: v for k, v in imputer.__dict__.items() if k.endswith("_")})
    z = imp.normalise(series()[NUM].to_numpy()).astype(np.float32)
    sampler = imp.window_sampler()
    starts, length, per_call = sampler.plan(len(z), 3, 4)
    assert per_call == 3 and len(starts) == 50
    seen, original = [], WindowSampler.sample_windows
    monkeypatch.setattr(WindowSampler, "sample_windows",
                        lambda self, *a: seen.append([list(c) for c in a[6]]) or original(self, *a))
    whole = sampler.sample(imp.model_, z, 4, imp.seed, imp.low_, imp.high_)
    assert seen.pop() == [list(range(i, min(i + 3, 50))) for i in range(0, 50, 3)]
    overlap = sampler.segment_overlap(len(z), 3, 4)
    assert overlap == 11 + 2 * 12
    a, b = 100, 230  # rows 100..229: windows 8..19 own them; the groups are 6-8, 9-11, ..., 18-20
    base = mdask.interpolate_series(z)
    part = sampler.sample_segment(imp.model_, z[a - overlap:b + overlap], base[a - overlap:b + overlap], a - overlap,
                                  len(z), (a, b), 4, imp.seed, imp.low_, imp.high_)
    assert seen.pop() == [list(range(i, i + 3)) for i in range(6, 21, 3)]
    np.testing.assert_array_equal(part, whole[:, a:b])
    with pytest.raises(ValueError, match=r"rows 100..229 need the rows 72..251 of the series, but the segment holds"):
        sampler.sample_segment(imp.model_, z[a - 5:b + 5], base[a - 5:b + 5], a - 5, len(z), (a, b), 4, imp.seed,
                               imp.low_, imp.high_)


def test_a_series_shorter_than_a_window_is_imputed_in_one_task(imputer):
    df = series(10)[NUM]
    with sync():
        out = mdask.impute(dd.from_pandas(df, npartitions=2), imputer).compute()
    numeric_equal(out, imputer.impute(df))


def test_the_time_split_asks_for_known_divisions_and_partitions_longer_than_the_overlap(imputer):
    df = series()[NUM]
    with pytest.raises(ValueError, match=r"divisions are unknown.*set_index\('time', sorted=True\)"):
        mdask.impute(dd.from_pandas(df, npartitions=3).clear_divisions(), imputer)
    ddf = dd.from_pandas(df, npartitions=1).repartition(divisions=[df.index[0], df.index[5], df.index[-1]])
    with sync(), pytest.raises(ValueError, match=r"partition 0 has 5 rows, fewer than the 23 rows .*repartition"):
        mdask.impute(ddf, imputer)


# ------------------------------------------------------------------------- separate series
def reference_by_station(df: pd.DataFrame, imp: Imputer, n_samples=None) -> pd.DataFrame:
    """Each station imputed on its own by the pandas API, put back in the input's row order."""
    parts = [imp.impute(g.drop(columns="station"), n_samples=n_samples) for _, g in df.groupby("station")]
    filled = pd.concat(parts).loc[df.index]
    out = df.copy()
    out[NUM] = filled[NUM]
    return out


@pytest.mark.slow  # a cluster of two worker processes, each importing torch
def test_groups_shuffled_to_workers_equal_each_station_imputed_with_pandas(client, imputer):
    df = stations()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = Imputer(**TINY).fit(df.drop(columns="station").iloc[:200])  # fitted without the key column
    before = df.copy()
    ddf = dd.from_pandas(df, npartitions=3)  # stations interleaved: every partition holds every station
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reference_by_station(df, imp)
        out = mdask.impute(ddf, imp, by="station").compute()
    assert sorted(out.index) == sorted(df.index)
    out = out.loc[df.index]
    numeric_equal(out, ref[out.columns])
    assert list(out.columns) == list(df.columns)
    assert (out["station"].astype(str) == df["station"]).all()
    assert not out[NUM].isna().any().any()
    pd.testing.assert_frame_equal(df, before)
    # the pandas function of the module computes the same
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(mdask.impute_groups(df, imp, by="station")[NUM].to_numpy(), ref[NUM].to_numpy())


def test_partitions_that_hold_whole_groups_are_not_shuffled_and_keep_their_order(imputer):
    df = stations().sort_values("station", kind="stable")
    ddf = dd.concat([dd.from_pandas(g, npartitions=1, sort=False) for _, g in df.groupby("station")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = Imputer(**TINY).fit(df.iloc[:200])  # fitted with the key column (text: left as it is)
        with sync():
            out = mdask.impute(ddf, imp, by="station", shuffle=False).compute()
            expected = mdask.impute_groups(df, imp, by="station")
    assert out.index.equals(df.index)  # no shuffle: the input's order
    np.testing.assert_array_equal(out[NUM].to_numpy(), expected[NUM].to_numpy())
    for s, g in df.groupby("station"):  # each station as the pandas API imputes it alone
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_array_equal(out.loc[g.index, NUM].to_numpy(), imp.impute(g)[NUM].to_numpy())
    with sync(), pytest.raises(ValueError, match=r"station='a' lies in partitions 0 and 1.*shuffle=False"):
        mdask.impute(dd.from_pandas(stations(), npartitions=2), imp, by="station", shuffle=False)


# ------------------------------------------------------------------------- shipping the model
def test_the_shipped_imputer_is_small_on_the_cpu_and_samples_the_same(imputer):
    light = mdask.shippable(imputer)
    size = len(pickle.dumps(light))
    weights = sum(p.numel() * p.element_size() for p in imputer.model_.parameters())
    assert size < weights + 64_000, (size, weights)  # the weights and little else
    assert hasattr(imputer, "train_result_") and not hasattr(light, "train_result_")
    copy = pickle.loads(pickle.dumps(light))
    assert all(p.device.type == "cpu" for p in copy.model_.parameters())
    df = series(100)[NUM]
    np.testing.assert_array_equal(copy.impute(df).to_numpy(), imputer.impute(df).to_numpy())


@pytest.mark.slow  # a cluster of two worker processes, each importing torch
def test_a_saved_imputer_is_loaded_on_the_workers_and_a_worker_error_reaches_the_client(client, imputer, tmp_path):
    path = imputer.save(tmp_path / "imp")
    df = series()[NUM]
    lazy = mdask.impute(dd.from_pandas(df, npartitions=3), str(path))
    numeric_equal(lazy.compute(), imputer.impute(df))
    assert mdask._load_saved.cache_info().currsize == 0  # loaded in the workers, not in this process
    shutil.rmtree(path)  # the workers can no longer read it
    with pytest.raises(FileNotFoundError, match=r"partition \d.*the worker process \d+ cannot read the saved imputer"):
        lazy.compute()


@pytest.mark.slow  # a cluster of two worker processes, each importing torch
def test_a_bad_partition_is_named_in_the_error_on_the_client(client, imputer):
    df = series()[NUM]
    df.iloc[450, 1] = np.inf
    with pytest.raises(ValueError, match=r"partition 3: columns \['y'\] contain inf"):
        mdask.impute(dd.from_pandas(df, npartitions=4), imputer)
    bad = stations()
    bad.index = np.where(bad["station"] == "c", 7, bad.index)  # station c: one index label for every row
    lazy = mdask.impute(dd.from_pandas(bad, npartitions=2), imputer, by="station", shuffle=True)
    with pytest.raises(ValueError, match=r"group station='c': the index has duplicated labels"):
        lazy.compute()


# ---------------------------------------------------------------------------------- bad input
def test_bad_input_gets_a_clear_error(imputer):
    df = series()[NUM]
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(TypeError, match=r"got a pandas DataFrame; impute it with imputer.transform"):
        mdask.impute(df, imputer)
    with pytest.raises(TypeError, match="expected a Dask DataFrame, got Series"):
        mdask.impute(ddf["x"], imputer)
    with pytest.raises(NotFittedError, match="not fitted"):
        mdask.impute(ddf, Imputer(**TINY))
    with pytest.raises(TypeError, match="imputer must be a fitted Imputer or the directory"):
        mdask.impute(ddf, 3)
    with pytest.raises(ValueError, match=r"by='station' is not a column of the frame"):
        mdask.impute(ddf, imputer, by="station")
    with pytest.raises(ValueError, match=r"missing \['z'\], unexpected \['w'\]; pass the fitted ones"):
        mdask.impute(ddf.rename(columns={"z": "w"}), imputer)
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['id'\]"):
        mdask.impute(ddf.assign(id=1), imputer)
    with pytest.raises(ValueError, match=r"n_samples must be a whole number >= 1, got 0"):
        mdask.impute(ddf, imputer, n_samples=0)
    with pytest.raises(ValueError, match=r"shuffle must be None"):
        mdask.impute(ddf.assign(k="a"), imputer, by="k", shuffle="yes")
    with pytest.raises(FileNotFoundError):
        mdask.impute(ddf, "/nonexistent/imputer")
    with pytest.raises(TypeError, match="expected a fitted Imputer"):
        mdask.shippable("imputer")
    with pytest.raises(ValueError, match=r"by='k' is not a column"):
        mdask.impute_groups(df, imputer, by="k")
