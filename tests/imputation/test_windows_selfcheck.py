import numpy as np
import pytest
import torch

from multidiff.tasks.imputation.selfcheck import check_mask, self_check_report
from multidiff.tasks.imputation.windows import WindowBatches, window_starts


# ---------------------------------------------------------------- WindowBatches
def _hand_window(series: np.ndarray, first: int, length: int):
    """Rows first .. first+length-1 of ``series`` as (K, length); rows outside the series (or NaN)
    are value 0, observed 0."""
    k = series.shape[1]
    vals, obs = np.zeros((length, k), np.float32), np.zeros((length, k), np.float32)
    for j in range(length):
        r = first + j
        if 0 <= r < len(series):
            ok = ~np.isnan(series[r])
            vals[j, ok], obs[j, ok] = series[r, ok], 1.0
    return vals.T, obs.T


def _all(wb):
    batches = list(wb)
    return (torch.cat([b["values"] for b in batches]).numpy(), torch.cat([b["observed"] for b in batches]).numpy(),
            batches)


def test_batches_are_the_hand_sliced_windows_framed_by_context():
    a = np.arange(1, 21, dtype=np.float32).reshape(10, 2)
    a[3, 1] = np.nan
    window, context = 6, 2
    wb = WindowBatches([a], window, context, stride=4, batch_size=8, shuffle=False)
    values, observed, batches = _all(wb)
    assert values.shape == (2, 2, window + 2 * context)  # starts 0 and 4 (the last ends at row 9)
    assert batches[0]["positions"].shape == (2, window)
    assert torch.equal(batches[0]["positions"][1], torch.arange(window, dtype=torch.float32))
    for i, start in enumerate([0, 4]):
        v, o = _hand_window(a, start - context, window + 2 * context)
        np.testing.assert_array_equal(values[i], v)
        np.testing.assert_array_equal(observed[i], o)
    assert not np.isnan(values).any()
    assert observed[0, :, :context].sum() == 0 and observed[1, :, -context:].sum() == 0  # the framing rows


def test_a_short_series_is_padded_and_never_reads_the_next_series():
    short = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    nxt = np.full((8, 2), 99.0, np.float32)
    window, context = 6, 1
    wb = WindowBatches([short, nxt], window, context, stride=6, batch_size=1, shuffle=False)
    values, observed, _ = _all(wb)
    assert len(values) == 1 + 2  # the short series once, the second one at starts 0 and 2
    v, o = _hand_window(short, -context, window + 2 * context)
    np.testing.assert_array_equal(values[0], v)
    np.testing.assert_array_equal(observed[0], o)
    assert observed[0].sum() == short.size and 99.0 not in values[0]
    for i, start in enumerate([0, 2]):
        v, o = _hand_window(nxt, start - context, window + 2 * context)
        np.testing.assert_array_equal(values[1 + i], v)
        np.testing.assert_array_equal(observed[1 + i], o)


@pytest.mark.parametrize("n,window,stride,expected", [(100, 10, 3, 31), (100, 10, 7, 14), (100, 10, 10, 10),
                                                      (10, 10, 1, 1), (7, 10, 3, 1)])
def test_number_of_windows_and_batches(n, window, stride, expected):
    series = np.ones((n, 3), np.float32)
    for batch_size in (1, 4, 64):
        wb = WindowBatches([series], window, 2, stride, batch_size, shuffle=False)
        assert len(wb.starts) == expected
        assert len(wb) == -(-expected // batch_size) == len(list(wb))
        assert sum(len(b["values"]) for b in wb) == expected


def test_windows_with_fewer_than_two_observed_centre_values_are_dropped():
    s = np.full((12, 2), np.nan, np.float32)
    s[[0, 1, 2, 3, 8, 9, 10, 11]] = 5.0  # observed context for every window
    s[4, 0] = 1.0                       # window rows 4..7 (start 4) holds one centre value
    wb = WindowBatches([s], 4, 4, stride=4, batch_size=8, shuffle=False)
    assert (wb.starts - wb.starts[0]).tolist() == [0, 8]  # the windows at rows 0 and 8 only
    s[6, 1] = 2.0                       # now two centre values: kept
    wb = WindowBatches([s], 4, 4, stride=4, batch_size=8, shuffle=False)
    assert len(wb.starts) == 3


def test_seeded_shuffling_is_reproducible_and_a_permutation():
    series = [np.arange(60, dtype=np.float32).reshape(30, 2), np.arange(40, dtype=np.float32).reshape(20, 2)]
    make = lambda seed: WindowBatches(series, 5, 2, 2, 3, shuffle=True, generator=torch.Generator().manual_seed(seed))
    first, again, other = _all(make(0))[0], _all(make(0))[0], _all(make(1))[0]
    plain = _all(WindowBatches(series, 5, 2, 2, 3, shuffle=False))[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, plain) and not np.array_equal(first, other)
    key = lambda arr: sorted(map(bytes, arr.astype(np.float32)))
    assert key(first) == key(plain)


# ---------------------------------------------------------------- check_mask
def _windows_holding(mask: np.ndarray, window: int) -> list[int]:
    starts = window_starts(len(mask), window, window)
    return [i for i, s in enumerate(starts) if mask[s:s + window].any()]


def test_held_entries_follow_the_shifted_missing_pattern_in_the_picked_windows_only():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    x[rng.random(x.shape) < 0.3] = np.nan
    window = 20
    held = check_mask([x], window, 0.3, seed=7)[0]
    observed = ~np.isnan(x)
    shifted = np.roll(~observed, 100, axis=0)
    assert held.shape == x.shape and held.dtype == bool
    assert not (held & ~observed).any()  # only observed entries are held out
    picked = _windows_holding(held, window)
    assert len(picked) == 3  # 30 % of 10 windows
    for i in range(10):
        rows = slice(i * window, (i + 1) * window)
        expect = (shifted & observed)[rows] if i in picked else np.zeros((window, 3), bool)
        np.testing.assert_array_equal(held[rows], expect)


@pytest.mark.parametrize("fraction,n_windows", [(0.1, 1), (0.25, 2), (0.5, 4), (0.5, 5), (1.0, 4)])
def test_the_fraction_of_windows_picked(fraction, n_windows):
    rng = np.random.default_rng(0)
    window = 20
    x = rng.normal(size=(window * n_windows, 4))
    held = check_mask([x], window, fraction, seed=1)[0]
    expect = min(max(1, round(fraction * n_windows)), n_windows - 1)  # never all: something must train
    assert len(_windows_holding(held, window)) == expect


def test_data_without_gaps_gets_about_ten_percent_random_entries():
    x = np.random.default_rng(0).normal(size=(400, 5))
    window = 40
    held = check_mask([x], window, 0.5, seed=2)[0]
    picked = _windows_holding(held, window)
    assert len(picked) == 5
    inside = np.concatenate([held[i * window:(i + 1) * window] for i in picked])
    assert 0.06 < inside.mean() < 0.14  # 1000 entries at 10 %: sd ~ 0.0095
    assert held.sum() == inside.sum()


def test_check_mask_is_seeded_and_leaves_the_global_random_state_alone():
    rng = np.random.default_rng(5)
    series = [rng.normal(size=(90, 3)), rng.normal(size=(50, 3))]
    series[0][rng.random((90, 3)) < 0.2] = np.nan
    np.random.seed(123)
    before = np.random.get_state()
    a = check_mask(series, 10, 0.3, seed=4)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    b = check_mask(series, 10, 0.3, seed=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = check_mask(series, 10, 0.3, seed=5)
    assert any(not np.array_equal(u, w) for u, w in zip(a, c))
    assert [m.shape for m in a] == [s.shape for s in series]


@pytest.mark.parametrize("rows", [8, 20])
def test_one_single_window_holds_nothing(rows):
    x = np.random.default_rng(0).normal(size=(rows, 3))
    x[2, 1] = np.nan
    held = check_mask([x], 20, 0.5, seed=0)
    assert len(held) == 1 and held[0].shape == x.shape and not held[0].any()


# ---------------------------------------------------------------- self_check_report
def _ramp_case(draw_value: float):
    truth = np.stack([np.arange(5.0), 10 * np.arange(5.0)], axis=1)  # (5 rows, 2 features)
    held = np.zeros_like(truth, bool)
    held[2, 0] = True                      # middle point of a linear ramp
    held[4, 1] = True                      # an edge: interpolation holds 30, truth is 40
    train = np.where(held, np.nan, truth)
    draws = np.repeat(truth[None], 3, axis=0)
    draws[:, 2, 0] = draw_value
    draws[0], draws[2] = draws[0] - 100.0, draws[2] + 7.0  # the median draw is the middle one
    return truth, train, held, draws


def test_report_errors_by_hand():
    truth, train, held, draws = _ramp_case(draw_value=2.0)  # draws equal the truth
    std = np.array([2.0, 0.5])
    rep = self_check_report([truth], [train], [held], [draws], std)
    assert rep["entries"] == 2
    assert rep["model_mae"] == 0.0
    # ramp middle: interpolation exact (0); the edge: |30 - 40| * 0.5 = 5; mean 2.5
    assert rep["interpolation_mae"] == pytest.approx(2.5, abs=1e-12)
    assert "does not beat" not in rep["message"]


def test_report_says_does_not_beat_exactly_when_the_model_is_not_better():
    truth, train, held, draws = _ramp_case(draw_value=2.0 + 5.0 / 2.0)  # |err| * 2 = 5 -> model MAE 2.5 == lin
    std = np.array([2.0, 0.5])
    draws[:, 4, 1] = 40.0
    rep = self_check_report([truth], [train], [held], [draws], std)
    assert rep["model_mae"] == pytest.approx(rep["interpolation_mae"]) == pytest.approx(2.5)
    assert "does not beat" in rep["message"]  # a tie is not a win
    worse = self_check_report([truth], [train], [held], [draws + 1.0], std)
    assert worse["model_mae"] > worse["interpolation_mae"] and "does not beat" in worse["message"]
    better = draws.copy()
    better[:, 2, 0] = 2.1
    rep = self_check_report([truth], [train], [held], [better], std)
    assert rep["model_mae"] == pytest.approx(0.1, abs=1e-12)  # |2.1 - 2| * 2 / 2 entries
    assert "does not beat" not in rep["message"]


def test_report_skips_series_with_nothing_held():
    truth, train, held, draws = _ramp_case(draw_value=2.0)
    other = np.ones((4, 2))
    rep = self_check_report([other, truth], [other, train], [np.zeros((4, 2), bool), held], [None, draws],
                            np.array([2.0, 0.5]))
    assert rep["entries"] == 2 and rep["interpolation_mae"] == pytest.approx(2.5)
