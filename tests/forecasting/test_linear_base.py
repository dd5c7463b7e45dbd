"""The linear base of CSDI forecasting (issue 32): the ridge against closed forms, the estimator's
zero-shot forecast (``max_time=0``) on exact and on real series."""
import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.datasets.gluonts_adapters import read_etth1
from multidiff.metrics.forecasting import crps_sum
from multidiff.tasks import forecast
from multidiff.tasks.forecasting.linear_base import ridge_loo


def test_ridge_recovers_an_exact_linear_map_and_its_leave_one_out_errors_are_exact():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    w = rng.normal(size=(3, 5))
    weights, bias, loo, alpha = ridge_loo(x, x @ w.T + 2.0)
    assert alpha == pytest.approx(1e-3)  # the smallest penalty tried: the fit is exact
    assert np.allclose(weights, w, atol=1e-2) and np.allclose(bias, 2.0, atol=1e-2)
    # leave-one-out residuals against refitting without each row, at the penalty chosen
    y = x @ w.T + rng.normal(size=(60, 3))
    weights, bias, loo, alpha = ridge_loo(x, y)
    for i in (0, 17, 59):
        keep = np.arange(60) != i
        xk, yk = x[keep], y[keep]
        xm, ym = xk.mean(0), yk.mean(0)
        a = np.linalg.solve((xk - xm).T @ (xk - xm) + alpha * 60 * np.eye(5), (xk - xm).T @ (yk - ym))
        assert np.allclose(loo[i], y[i] - (ym + (x[i] - xm) @ a), atol=1e-8)


def _sines(n=400, period=12):
    t = np.arange(n)
    index = pd.date_range("2020-01-01", periods=n, freq="h")
    return pd.DataFrame({"a": 10 + np.sin(2 * np.pi * t / period), "b": 3 * np.cos(2 * np.pi * t / period)},
                        index=index)


def test_zero_shot_continues_an_exact_periodic_series_with_no_spread():
    df = _sines()
    fc = forecast(df.iloc[:-12], horizon=12, max_time=0, n_samples=50)
    assert np.allclose(fc.samples, df.iloc[-12:].to_numpy()[None], atol=1e-3)


def test_zero_shot_runs_no_training_step_and_resamples_joint_residual_windows():
    from multidiff.datasets.gluonts_adapters import values_to_dataset
    from multidiff.tasks.forecasting import CSDIForecastEstimator

    rng = np.random.default_rng(0)
    common = rng.normal(size=600)                       # the same shock in both series
    df = pd.DataFrame({"a": np.cumsum(common), "b": 5 + np.cumsum(common)},
                      index=pd.date_range("2020-01-01", periods=600, freq="D"))
    est = CSDIForecastEstimator(freq="D", prediction_length=5, target_dim=2, max_time=0, seed=0)
    predictor = est.train(values_to_dataset(df.to_numpy(), df.index, "D"))
    assert est.train_result_ is None and predictor.spread == "residuals"
    torch.manual_seed(0)
    paths = next(iter(predictor.predict(values_to_dataset(df.to_numpy(), df.index, "D"), num_samples=400))).samples
    spread = paths - paths.mean(0)
    # a residual bootstrap of whole windows keeps the series' shared shocks: correlation ~1
    assert np.corrcoef(spread[:, -1, 0], spread[:, -1, 1])[0, 1] > 0.99
    # and the spread grows with the horizon as a random walk's (std ~ sqrt(h))
    assert spread[:, -1, 0].std() > 1.6 * spread[:, 0, 0].std()


def test_zero_shot_beats_seasonal_naive_on_a_real_frame(data_dir):
    """ETTh1's last 1500 hours before a fixed day, horizon 24: CRPS-sum of the zero-shot forecast
    against yesterday's values (seasonal naive), values measured once (0.221 against 0.412)."""
    df = read_etth1(data_dir / "ett")
    end = len(df) - 24 * 30
    train, y = df.iloc[end - 1524:end - 24], df.iloc[end - 24:end].to_numpy()
    fc = forecast(train, horizon=24, max_time=0, n_samples=100)
    ours = crps_sum(fc.samples[None], y[None])
    naive = crps_sum(train.iloc[-24:].to_numpy()[None, None], y[None])
    assert ours < 0.7 * naive, (ours, naive)


def test_zero_shot_needs_the_linear_base():
    from multidiff.tasks.forecasting import CSDIForecastEstimator

    with pytest.raises(ValueError, match="max_time=0 .*base='linear'"):
        CSDIForecastEstimator(freq="h", prediction_length=4, target_dim=1, max_time=0, base="naive")
    with pytest.raises(ValueError, match="base must be one of"):
        CSDIForecastEstimator(freq="h", prediction_length=4, target_dim=1, base="ridge")


def test_the_base_reads_lags_beyond_the_networks_context():
    """A pattern that repeats every 24 steps is continued exactly from 48 lags while the network's
    context stays 12 steps; from the context alone (lags=12) it is not."""
    from multidiff.datasets.gluonts_adapters import values_to_dataset
    from multidiff.tasks.forecasting import CSDIForecastEstimator

    day = np.random.default_rng(1).normal(size=(24, 2))
    values = np.tile(day, (30, 1))
    index = pd.date_range("2020-01-01", periods=len(values), freq="h")
    past, future = values_to_dataset(values[:-6], index[:-6], "h"), values[-6:]
    errors = {}
    for lags in (48, 12):
        est = CSDIForecastEstimator(freq="h", prediction_length=6, target_dim=2, context_length=12, lags=lags,
                                    max_time=0)
        predictor = est.train(past)
        assert est.lags_ == lags and predictor.model.context_length == 12 and predictor.model.past_length == lags
        paths = next(iter(predictor.predict(past, num_samples=20))).samples
        errors[lags] = np.abs(paths.mean(0) - future).max()
    assert errors[48] < 1e-2 < 0.5 < errors[12], errors


def test_default_lags_cover_a_week_of_hours_and_shrink_to_short_frames():
    from multidiff.datasets.gluonts_adapters import values_to_dataset
    from multidiff.tasks.forecasting import CSDIForecastEstimator

    for rows, expected in ((2000, 168), (200, 200 - 24 - 31), (90, 48)):
        values = np.random.default_rng(0).normal(size=(rows, 2)).cumsum(0)
        index = pd.date_range("2020-01-01", periods=rows, freq="h")
        est = CSDIForecastEstimator(freq="h", prediction_length=24, target_dim=2, max_time=0)
        est.train(values_to_dataset(values, index, "h"))
        assert est.lags_ == expected, (rows, est.lags_)
