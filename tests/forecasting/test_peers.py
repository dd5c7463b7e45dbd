"""The forecasting peers (issue 32): seasonal naive and the linear direct ridge, on series whose
continuation is known exactly or in distribution."""
import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.tasks.forecasting.peers import MIN_WINDOWS, linear_forecast, seasonal_naive


def _periodic(n: int, period: int = 5) -> np.ndarray:
    pattern = np.array([[3.0, -1.0], [1.0, 4.0], [4.0, 1.0], [1.0, -5.0], [5.0, 9.0]])[:period]
    return pattern[np.arange(n) % period]


def test_seasonal_naive_returns_the_next_period():
    y = _periodic(23 + 12)                      # 23 rows: the history ends inside a period
    out = seasonal_naive(y[:23], horizon=12, season=5)
    assert out.shape == (1, 12, 2)
    np.testing.assert_array_equal(out[0], y[23:])


def test_seasonal_naive_fills_gaps_by_interpolation():
    y = _periodic(10)
    y[8, 0] = np.nan                            # inside: the mean of its neighbours
    y[9, 1] = np.nan                            # at the end: the last observed value held
    out = seasonal_naive(y, horizon=2, season=2)[0]
    assert out[0, 0] == (y[7, 0] + y[9, 0]) / 2 and out[1, 1] == y[8, 1]


def _trend_and_cycle(n: int) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    return np.c_[3 * np.sin(2 * np.pi * t / 24) + 0.05 * t + 10, 0.02 * t - 7, 2 * np.cos(2 * np.pi * t / 12)]


def test_linear_peer_continues_an_exact_linear_series():
    # trend + cycles obey a linear recursion over 48 lags: the continuation is recovered, spread ~ 0
    y, h = _trend_and_cycle(600 + 24), 24
    paths = linear_forecast(y[:-h], h, lags=48, n_samples=20)
    assert paths.shape == (20, h, 3)
    np.testing.assert_allclose(paths.mean(0), y[-h:], atol=1e-3)
    assert paths.std(0).max() < 1e-3


def _ar1(n: int, phi: float, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + sigma * rng.standard_normal()
    return x[:, None]


def test_linear_peer_spread_is_the_noise_of_a_noisy_ar1():
    phi, sigma, h = 0.8, 0.5, 5
    x = _ar1(5000, phi, sigma)
    paths = linear_forecast(x, h, lags=10, n_samples=20000)[..., 0]
    steps = np.arange(1, h + 1)
    # the h-step error of AR(1): sigma^2 (1 + phi^2 + ... + phi^(2h-2))
    np.testing.assert_allclose(paths.std(0), sigma * np.sqrt((1 - phi ** (2 * steps)) / (1 - phi ** 2)), rtol=0.04)
    np.testing.assert_allclose(paths.mean(0), phi ** steps * x[-1, 0], atol=0.05)


def test_linear_peer_keeps_a_constant_series_constant():
    y = np.c_[np.full(60, 7.5), np.arange(60.0)]
    paths = linear_forecast(y, 3, lags=8, n_samples=4)
    np.testing.assert_array_equal(paths[..., 0], 7.5)
    np.testing.assert_allclose(paths[..., 1], np.broadcast_to([60.0, 61.0, 62.0], (4, 3)), atol=0.01)


def test_linear_peer_fills_gaps_by_interpolation():
    y = _trend_and_cycle(300)
    y[[5, 6, 150], 0] = np.nan
    y[-1, 2] = np.nan
    filled = pd.DataFrame(y).interpolate(limit_direction="both").to_numpy()
    np.testing.assert_array_equal(linear_forecast(y, 6, lags=24, n_samples=3),
                                  linear_forecast(filled, 6, lags=24, n_samples=3))


def test_linear_peer_is_seeded_and_leaves_the_global_generators_alone():
    y = _ar1(400, 0.5, 1.0)
    np.random.seed(1)
    torch.manual_seed(1)
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    first = linear_forecast(y, 4, lags=12, n_samples=50, seed=3)
    after_np, after_torch = np.random.get_state(), torch.get_rng_state()
    assert all(np.array_equal(a, b) for a, b in zip(np_state, after_np))
    assert torch.equal(torch_state, after_torch)
    np.random.seed(2)                            # another global state: the same paths
    np.testing.assert_array_equal(linear_forecast(y, 4, lags=12, n_samples=50, seed=3), first)
    assert not np.allclose(linear_forecast(y, 4, lags=12, n_samples=50, seed=4), first)


def test_linear_peer_refuses_a_too_short_history_naming_the_length():
    lags, h = 24, 6
    need = lags + h + MIN_WINDOWS - 1
    y = _ar1(need, 0.5, 1.0)
    assert linear_forecast(y, h, lags=lags, n_samples=2).shape == (2, h, 1)
    with pytest.raises(ValueError, match=f"at least {need} rows.*lags <= {lags - 1}"):
        linear_forecast(y[:-1], h, lags=lags)


@pytest.mark.parametrize("history, words", [
    (np.zeros(50), "(T, D)"),
    (np.c_[np.zeros(50), np.full(50, np.nan)], "series [1]"),
    (np.r_[np.zeros(49), np.inf][:, None], "infinite"),
])
def test_peers_refuse_bad_histories(history, words):
    for peer in (lambda x: linear_forecast(x, 2, lags=4), lambda x: seasonal_naive(x, 2, 1)):
        with pytest.raises(ValueError) as info:
            peer(history)
        assert words in str(info.value)


def test_evaluate_peer_scores_each_window_from_its_history_alone():
    """evaluate_peer hands the forecaster each test entry's history without its last horizon steps and
    scores the forecast against them: seasonal naive on a periodic series is exact (CRPS 0), a
    forecaster one step off is not."""
    from multidiff.tasks.forecasting import evaluate_peer

    h, start = 5, pd.Period("2020-01-01", freq="D")
    test = [{"start": start, "target": _periodic(n).T} for n in (23, 31)]  # entries hold (D, T)
    seen = []

    def naive(history):
        seen.append(history.shape)
        return seasonal_naive(history, h, 5)

    row = evaluate_peer(naive, test, h)
    assert seen == [(18, 2), (26, 2)]
    assert row["CRPS"] == row["ND"] == row["NRMSE-sum"] == 0.0 and row["seconds"] >= 0
    assert evaluate_peer(lambda history: seasonal_naive(history[:-1], h, 5), test, h)["CRPS"] > 0.1


def test_deepar_peer_forecasts_every_test_window_and_leaves_the_global_generators_alone():
    """peers.deepar (GluonTS' DeepAR, a second of training): sample paths for every test window in
    (N, S, H, D), the targets the windows' last H steps, the caller's generators as they were."""
    import random

    from multidiff.tasks.forecasting.peers import deepar

    rng = np.random.default_rng(0)
    y = np.cumsum(rng.standard_normal((2, 120)), axis=1)
    start, h = pd.Period("2020-01-01", freq="D"), 6
    train = [{"start": start, "target": y[:, :108]}]
    test = [{"start": start, "target": y[:, :114]}, {"start": start, "target": y}]
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    out = deepar(train, test, h, "D", max_time=1, n_samples=4, seed=1, epochs=1)
    assert out["samples"].shape == (2, 4, h, 2) and np.isfinite(out["samples"]).all()
    np.testing.assert_array_equal(out["targets"], np.stack([y[:, 108:114].T, y[:, 114:].T]))
    assert out["train_seconds"] > 0 and out["sampling_seconds"] > 0
    assert random.getstate() == states[0] and (np.random.get_state()[1] == states[1]).all()
    assert torch.equal(torch.get_rng_state(), states[2])
