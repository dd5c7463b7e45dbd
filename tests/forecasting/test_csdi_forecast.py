"""CSDI forecasting (issue 15): standardisation by hand, the GluonTS estimator/predictor contract,
serde, clear errors, the pandas API and learning on a real ETTh1 slice."""
import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.datasets.gluonts_adapters import read_etth1, read_exchange_rate, rolling_split
from multidiff.metrics.forecasting import crps
from multidiff.tasks import forecast
from multidiff.tasks.forecasting import CSDIForecastEstimator, CSDIForecastPredictor, evaluate
from multidiff.tasks.forecasting.csdi import standardise, step_scale

H = 6
TINY = dict(context_length=12, channels=8, layers=1, heads=2, num_train_steps=10, batch_size=8, num_batches_per_epoch=4,
            max_steps=4, max_time=None, num_parallel_samples=8, sampler="ddim", sampler_steps=3, seed=0)


@pytest.fixture(scope="module")
def exchange(data_dir):
    df = read_exchange_rate(data_dir / "exchange_rate").iloc[-300:]
    train, test, freq = rolling_split(df, H, 2)
    return df, train, test, freq


@pytest.fixture(scope="module")
def predictor(exchange):
    df, train, _, freq = exchange
    return CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, **TINY).train(train)


def _predict(predictor, ds, seed=0, **kw):
    torch.manual_seed(seed)
    return list(predictor.predict(ds, **kw))


def test_standardise_by_hand():
    y = torch.tensor([[[1.0, 3.0, float("nan"), 10.0], [5.0, 5.0, 5.0, 7.0], [float("nan")] * 4]])
    z, observed, loc, scale, seen = standardise(y, context_length=3, floor=torch.tensor([0.0, 0.5, 0.0]))
    assert loc[0, :, 0].tolist() == [2.0, 5.0, 0.0]                  # mean of the observed context
    assert scale[0, :, 0].tolist() == pytest.approx([1.0, 0.5, 1e-8])  # std; flat context -> floor
    assert z[0, 0].tolist() == pytest.approx([-1.0, 1.0, 0.0, 8.0])    # unobserved -> 0
    assert z[0, 1, 3].item() == pytest.approx(4.0)
    assert observed[0, 0].tolist() == [1, 1, 0, 1] and seen[0].tolist() == [True, True, False]
    series = [np.array([[0.0, 1.0, 3.0, np.nan, 4.0], [2.0, 2.0, 2.0, 2.0, 2.0]])]
    assert step_scale(series).tolist() == pytest.approx([0.5, 0.0])   # std of diffs [1, 2]; NaN diffs skipped


def test_forecasts_are_gluonts_sample_forecasts(predictor, exchange):
    from gluonts.model.forecast import SampleForecast

    df, _, test, freq = exchange
    forecasts = _predict(predictor, test)
    assert len(forecasts) == 2 and all(isinstance(f, SampleForecast) for f in forecasts)
    f = forecasts[-1]
    assert f.samples.shape == (8, H, 8) and np.isfinite(f.samples).all()
    assert f.start_date == pd.Period(df.index[-1], freq=freq) + 1  # the step after the entry's end
    assert _predict(predictor, test, num_samples=3)[0].samples.shape == (3, H, 8)


def test_make_evaluation_predictions_and_evaluate(predictor, exchange):
    *_, test, _ = exchange
    scores = evaluate(predictor, test, num_samples=8)
    assert set(scores) >= {"CRPS", "CRPS-sum", "ND", "NRMSE-sum", "sampling_seconds"}
    assert 0 < scores["CRPS"] < 1  # an exchange rate is ~1; an unscaled forecast would be far off


def test_serialize_round_trip_same_seeded_samples(predictor, exchange, tmp_path):
    from gluonts.model.predictor import Predictor

    *_, test, _ = exchange
    predictor.serialize(str(tmp_path / "p"))
    for loaded in (CSDIForecastPredictor.deserialize(str(tmp_path / "p")), Predictor.deserialize(tmp_path / "p")):
        assert isinstance(loaded, CSDIForecastPredictor) and loaded.sampler_steps == 3
        np.testing.assert_array_equal(_predict(loaded, test)[0].samples, _predict(predictor, test)[0].samples)
    with pytest.raises(FileNotFoundError, match="no saved CSDI forecaster"):
        CSDIForecastPredictor.deserialize(tmp_path / "nothing")
    import json

    from multidiff.core.schedules import DiscreteSchedule, schedule_from_config

    settings = json.loads((tmp_path / "p" / "weights" / "config.json").read_text())["config"]
    recorded = schedule_from_config(settings["schedule"])
    assert recorded == predictor.model.schedule and (recorded.kind, recorded.dtype) == ("quad", "float32")  # CSDI's
    settings_file = tmp_path / "p" / "weights" / "config.json"
    edited = json.loads(settings_file.read_text())
    edited["config"]["schedule"] = DiscreteSchedule("quad", len(recorded) + 1, dtype="float32").to_config()
    settings_file.write_text(json.dumps(edited))
    with pytest.raises(ValueError, match="records the schedule"):
        CSDIForecastPredictor.deserialize(tmp_path / "p")


def test_shift_of_the_data_shifts_the_forecast(predictor, exchange):
    """Each window is standardised by its context: adding 100 to every value adds 100 to every sample."""
    from gluonts.dataset.common import ListDataset

    *_, test, freq = exchange
    shifted = ListDataset([{**e, "target": np.asarray(e["target"]) + 100.0} for e in test], freq=freq,
                          one_dim_target=False)
    a, b = _predict(predictor, test)[0].samples, _predict(predictor, shifted)[0].samples
    np.testing.assert_allclose(b, a + 100.0, atol=2e-3)


def test_samplers_and_bad_settings(predictor, exchange):
    *_, test, _ = exchange
    for sampler, steps in (("ddpm", None), ("dpm_solver", 4)):
        predictor.set_sampler(sampler, steps)
        assert np.isfinite(_predict(predictor, test, num_samples=2)[0].samples).all()
    predictor.set_sampler("ddim", 3)
    with pytest.raises(ValueError, match="sampler must be one of"):
        predictor.set_sampler("euler", 3)
    with pytest.raises(ValueError, match=r"sampler_steps must be None .* in \[1, 10\], got 11"):
        predictor.set_sampler("ddim", 11)
    with pytest.raises(ValueError, match="num_samples must be None .* >= 1, got 0"):
        predictor.predict(test, num_samples=0)
    with pytest.raises(ValueError, match="channels \\(8\\) must be a multiple of heads \\(3\\)"):
        CSDIForecastEstimator(freq="B", prediction_length=H, target_dim=8, channels=8, heads=3)
    with pytest.raises(ValueError, match="prediction_length must be a whole number >= 1, got 2.5"):
        CSDIForecastEstimator(freq="B", prediction_length=2.5, target_dim=8)


def test_entries_the_model_cannot_use_are_named(predictor, exchange):
    from gluonts.dataset.common import ListDataset

    df, train, test, freq = exchange
    est = CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=7, **TINY)
    with pytest.raises(ValueError, match="has 8 series but the estimator was built with target_dim=7"):
        est.train(train)
    short = ListDataset([{"start": df.index[0], "target": df.values[:10].T}], freq=freq, one_dim_target=False)
    with pytest.raises(ValueError, match="has 10 time steps; training needs at least 18"):
        CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, **TINY).train(short)
    uni = ListDataset([{"start": df.index[0], "target": df.values[:, 0]}], freq=freq)
    with pytest.raises(ValueError, match="1-D target; CSDI forecasting needs multivariate entries"):
        list(predictor.predict(uni))
    values = df.values.T.copy()
    values[2, -12:] = np.nan  # series 2 unobserved in the whole context
    gap = ListDataset([{"start": df.index[0], "target": values}], freq=freq, one_dim_target=False)
    with pytest.raises(ValueError, match="series 2 of window 0 has no observed value in the last 12 steps"):
        list(predictor.predict(gap))


def test_training_is_reproducible_and_leaves_global_rng_alone(exchange):
    df, train, test, freq = exchange
    torch.manual_seed(123)
    state = torch.get_rng_state()
    p1 = CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, **TINY).train(train)
    assert torch.equal(torch.get_rng_state(), state)
    p2 = CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, **TINY).train(train)
    for a, b in zip(p1.model.state_dict().values(), p2.model.state_dict().values()):
        assert torch.equal(a, b)


def test_frame_api_trains_csdi_by_default(data_dir):
    df = read_etth1(data_dir / "ett").iloc[-200:, :3]
    before = df.copy()
    fc = forecast(df, horizon=4, n_samples=6, **{k: v for k, v in TINY.items() if k != "max_time"})
    pd.testing.assert_frame_equal(df, before)
    assert fc.samples.shape == (6, 4, 3) and fc[0.5].index[0] == df.index[-1] + pd.Timedelta(hours=1)
    gap = df.copy()
    gap.iloc[-12:, 1] = np.nan
    with pytest.raises(ValueError, match=r"columns \['HULL'\] have no observed value in the last 12 rows .* "
                                         "model=\"timegrad\""):
        forecast(gap, horizon=4, **{k: v for k, v in TINY.items() if k != "max_time"})
    with pytest.raises(ValueError, match="model must be one of \\('csdi', 'timegrad'\\), got 'arima'"):
        forecast(df, horizon=4, model="arima")


def test_cli_round_trip_csdi(data_dir, tmp_path):
    from multidiff.cli import main

    src = tmp_path / "ett.csv"
    read_etth1(data_dir / "ett").iloc[-200:, :2].reset_index().to_csv(src, index=False)
    out, model = tmp_path / "fc.csv", tmp_path / "model"
    tiny = ["--max-time", "0", "--epochs", "1", "--num-batches-per-epoch", "3", "--batch-size", "8",
            "--context-length", "8"]
    assert main(["forecast", str(src), "-o", str(out), "--save-model", str(model), "--horizon", "4",
                 "--samples", "5", *tiny]) == 0
    first = pd.read_csv(out)
    assert len(first) == 8 and set(first["series"]) == {"HUFL", "HULL"}
    out2 = tmp_path / "fc2.csv"
    assert main(["forecast", str(src), "-o", str(out2), "--model", str(model), "--horizon", "4",
                 "--samples", "5"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out2), first)  # same seed, same weights, same forecast
    assert main(["forecast", str(src), "--horizon", "4", "--hidden-size", "8"]) == 2  # a TimeGrad option


@pytest.mark.slow
@pytest.mark.slow  # 30 s of training by design
def test_training_learns_on_real_hourly_data(data_dir):
    """120 training steps (~30 s) on ETTh1 must beat the untrained model (which forecasts the held last
    value, a persistence forecast) by 10 % in CRPS; 600 s reach DeepAR (benchmarks/RESULTS.md)."""
    df = read_etth1(data_dir / "ett").iloc[-24 * 60:]
    train, test, freq = rolling_split(df, 24, 3)
    kw = dict(prediction_length=24, target_dim=7, context_length=48, seed=0, num_parallel_samples=16)
    untrained = CSDIForecastEstimator(freq=freq, max_steps=1, lr=1e-9, max_time=None, **kw).train(train)
    trained = CSDIForecastEstimator(freq=freq, max_time=None, max_steps=120, **kw).train(train)
    scores = {}
    for name, p in (("untrained", untrained), ("trained", trained)):
        from gluonts.evaluation import make_evaluation_predictions

        torch.manual_seed(0)
        fc_it, ts_it = make_evaluation_predictions(test, p, num_samples=16)
        samples = np.stack([f.samples for f in fc_it])
        targets = np.stack([np.asarray(ts)[-24:] for ts in ts_it])
        scores[name] = crps(samples, targets)
    assert scores["trained"] < 0.9 * scores["untrained"], scores


def test_gluonts_backtest_metrics_agree_with_evaluate(predictor, exchange):
    from gluonts.evaluation import MultivariateEvaluator, backtest_metrics

    *_, test, _ = exchange
    evaluator = MultivariateEvaluator(quantiles=(np.arange(20) / 20.0)[1:], target_agg_funcs={"sum": np.sum})
    torch.manual_seed(0)
    agg, _ = backtest_metrics(test, predictor, evaluator, num_samples=8)
    ours = evaluate(predictor, test, num_samples=8, seed=0)
    assert agg["m_sum_mean_wQuantileLoss"] == pytest.approx(ours["CRPS-sum"], rel=1e-5)
    assert agg["mean_wQuantileLoss"] == pytest.approx(ours["CRPS"], rel=1e-5)


def test_untrained_model_forecasts_around_the_last_observed_value():
    """The diffusion runs over the residual around the held last context value: a network that
    predicts v = 0 (the zero-initialised output layer) leaves the median there, not at the mean."""
    from multidiff.tasks.forecasting import CSDIForecastModel

    model = CSDIForecastModel(target_dim=2, context_length=12, prediction_length=4, channels=8, layers=1, heads=2)
    past = torch.stack([torch.arange(12.0), 100 - torch.arange(12.0)])[None]  # trends: last 11 and 89
    past[0, 1, -1] = float("nan")                                              # series 2: last observed 90
    samples = model.sample(past, 200, "ddim", 5, generator=torch.Generator().manual_seed(0))
    median = samples.median(dim=0).values[0]                                   # (2, 4)
    assert torch.allclose(median[0], torch.tensor(11.0), atol=1.0), median
    assert torch.allclose(median[1], torch.tensor(90.0), atol=1.0), median


def test_train_config_route_and_checkpoint_kind(exchange, predictor, tmp_path):
    import dataclasses

    from multidiff.core.checkpoint import CheckpointKindError
    from multidiff.tasks.forecasting import TimeGradPredictor
    from multidiff.tasks.forecasting.csdi import DEFAULT_TRAIN_CONFIG

    freq = exchange[3]
    est = CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8,
                                train_config=dataclasses.replace(DEFAULT_TRAIN_CONFIG, weight_decay=0.5), lr=2e-3)
    cfg = est.train_config
    assert (cfg.weight_decay, cfg.lr, cfg.max_time, cfg.grad_clip) == (0.5, 2e-3, 120.0, 1.0)
    with pytest.raises(TypeError, match="train_config must be a multidiff.core.training.TrainConfig"):
        CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, train_config={"lr": 1})
    predictor.serialize(tmp_path / "csdi")
    with pytest.raises(CheckpointKindError, match="forecasting.csdi"):
        TimeGradPredictor.deserialize(tmp_path / "csdi")


def test_naive_base_holds_the_last_value_or_repeats_the_last_season():
    from multidiff.tasks.forecasting.csdi import naive_base

    z = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0, 0.0, 0.0]]])
    cond = torch.tensor([[[1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]]])  # 4.0 unobserved: interpolated
    assert naive_base(z, cond, 5, 1)[0, 0].tolist() == [1, 2, 3, 4, 5, 5, 5, 5, 5]
    assert naive_base(z, cond, 5, 3)[0, 0].tolist() == [1, 2, 3, 4, 5, 3, 4, 5, 3]


def test_season_is_chosen_by_the_naive_error_on_training_windows():
    from multidiff.tasks.forecasting.csdi import choose_season

    t = np.arange(2000)
    rng = np.random.default_rng(0)
    cycle = np.sin(2 * np.pi * t / 24) + 0.05 * rng.standard_normal(2000)   # a daily cycle
    walk = np.cumsum(rng.standard_normal(2000))                             # a random walk
    assert choose_season([np.stack([cycle, cycle * 2])], 96, 24, 24) == 24
    assert choose_season([np.stack([walk, walk + 3])], 96, 24, 24) == 1
    assert choose_season([np.stack([cycle])], 12, 24, 24) == 1               # season longer than the context


def test_estimator_records_the_season_and_its_predictor_saves_it(exchange, tmp_path):
    df, train, test, freq = exchange
    est = CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, **TINY)
    p = est.train(train)
    assert est.season_ == 1 and p.model.season == 1                     # the default
    auto = CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, season=None, **TINY)
    assert auto.train(train).model.season == auto.season_ in (1, 5)
    forced = CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, season=5, **TINY)
    p5 = forced.train(train)
    assert forced.season_ == 5
    p5.serialize(tmp_path / "p5")
    assert CSDIForecastPredictor.deserialize(tmp_path / "p5").model.season == 5
    with pytest.raises(ValueError, match=r"season must be None .* in \[1, 12\], got 13"):
        CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, season=13, **TINY)


def test_calendar_features_reach_the_network(exchange):
    """With ``time_features=True`` the network sees GluonTS' calendar features of each window
    (day of week ... for business days): they change the forecast, and serde keeps them."""
    from multidiff.tasks.forecasting.csdi import calendar_features

    _, train, test, freq = exchange
    f = calendar_features(pd.Period("2024-01-01 00:00", freq="h"), 30, "h")   # a Monday, midnight
    assert f.shape == (4, 30)
    assert f[0, 0] == pytest.approx(-0.5) and f[0, 23] == pytest.approx(0.5) and f[0, 24] == pytest.approx(-0.5)
    assert f[1, 0] == pytest.approx(-0.5) and f[1, 24] == pytest.approx(-0.5 + 1 / 6)  # Monday -> Tuesday
    est = CSDIForecastEstimator(freq=freq, prediction_length=H, target_dim=8, time_features=True, **TINY)
    pred = est.train(train)
    assert pred.model.net.time_feature_dim == 3   # business days: day of week, of month, of year
    a = _predict(pred, test)[0].samples
    net = pred.model.net
    with torch.no_grad():
        for block in net.blocks:  # zero the calendar columns of the side projection
            block.cond_proj.weight[:, -3:] = 0
    b = _predict(pred, test)[0].samples
    assert np.abs(a - b).max() > 1e-6  # small: 4 training steps from a zero-initialised output layer
    with pytest.raises(ValueError, match="time_feature_dim=3"):
        net.side_info(torch.zeros(1, 5), torch.zeros(1, 8, 5))
