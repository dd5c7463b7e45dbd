"""Forecasting metrics against hand-computed values and against GluonTS' MultivariateEvaluator."""
import numpy as np
import pandas as pd
import pytest

from multidiff.metrics import forecasting as m


def test_quantile_loss_by_hand():
    # target 3 vs forecast 1 at q=0.9: under-forecast costs 2 * 0.9 * 2 = 3.6
    assert m.quantile_loss(np.array([3.0]), np.array([1.0]), 0.9) == pytest.approx(3.6)
    # over-forecast by 2 at q=0.9: 2 * 0.1 * 2 = 0.4
    assert m.quantile_loss(np.array([1.0]), np.array([3.0]), 0.9) == pytest.approx(0.4)


def test_point_mass_metrics_by_hand():
    # every sample equals the forecast f; targets y: each quantile forecast is f
    y = np.array([[[1.0, 2.0], [3.0, 4.0]]])               # (N=1, H=2, D=2), sum |y| = 10
    f = np.array([[[2.0, 2.0], [2.0, 2.0]]])
    samples = np.repeat(f[:, None], 5, axis=1)              # (1, 5, 2, 2)
    # sum |y - f| = 1 + 0 + 1 + 2 = 4 -> ND = 0.4; quantile losses average to the absolute error
    assert m.nd(samples, y) == pytest.approx(0.4)
    qs = (0.25, 0.5, 0.75)
    by_hand = np.mean([2 * sum(abs((fi - yi) * ((yi <= fi) - q)) for yi, fi in zip(y.ravel(), f.ravel())) / 10
                       for q in qs])
    assert m.crps(samples, y, qs) == pytest.approx(by_hand)
    assert m.crps(samples, y, (0.5,)) == pytest.approx(0.4)  # CRPS of a point mass at q=0.5 is the MAE ratio
    # sums over series: y -> [3, 7], f -> [4, 4]; ND-sum = (1 + 3) / 10
    assert m.nd_sum(samples, y) == pytest.approx(0.4)
    # NRMSE-sum = sqrt(((3-4)^2 + (7-4)^2) / 2) / mean(|[3, 7]|) = sqrt(5) / 5
    assert m.nrmse_sum(samples, y) == pytest.approx(np.sqrt(5) / 5)
    assert m.coverage(samples, y, 0.5) == pytest.approx(0.5)  # y <= 2 for 1 and 2 only


def test_perfect_forecast_scores_zero():
    rng = np.random.default_rng(0)
    y = rng.uniform(1, 2, size=(3, 4, 5))
    samples = np.repeat(y[:, None], 10, axis=1)
    metrics = m.forecast_metrics(samples, y)
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in metrics.values())


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="samples must be"):
        m.crps(np.zeros((2, 10, 4, 3)), np.zeros((2, 5, 3)))


def test_matches_gluonts_multivariate_evaluator():
    from gluonts.evaluation import MultivariateEvaluator
    from gluonts.model.forecast import SampleForecast

    rng = np.random.default_rng(1)
    n, s, h, d = 3, 50, 6, 4
    targets = rng.normal(5, 2, size=(n, h, d))
    samples = targets[:, None] + rng.normal(0.3, 1.5, size=(n, s, h, d))
    start = pd.Period("2020-01-01", freq="D")
    series = [pd.DataFrame(t, index=pd.period_range(start + 10 * i, periods=h, freq="D")) for i, t in enumerate(targets)]
    forecasts = [SampleForecast(samples[i], start_date=start + 10 * i) for i in range(n)]
    evaluator = MultivariateEvaluator(quantiles=(np.arange(20) / 20.0)[1:], target_agg_funcs={"sum": np.sum})
    agg, _ = evaluator(iter(series), iter(forecasts), num_series=n)
    assert m.crps(samples, targets) == pytest.approx(agg["mean_wQuantileLoss"], rel=1e-6)
    assert m.crps_sum(samples, targets) == pytest.approx(agg["m_sum_mean_wQuantileLoss"], rel=1e-6)
    assert m.nd(samples, targets) == pytest.approx(agg["ND"], rel=1e-6)
    assert m.nrmse(samples, targets) == pytest.approx(agg["NRMSE"], rel=1e-6)
    assert m.nd_sum(samples, targets) == pytest.approx(agg["m_sum_ND"], rel=1e-6)
    assert m.nrmse_sum(samples, targets) == pytest.approx(agg["m_sum_NRMSE"], rel=1e-6)
