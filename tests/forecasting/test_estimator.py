"""TimeGradEstimator / TimeGradPredictor through GluonTS and Lightning on a real slice of exchange_rate."""

import random

import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.datasets.gluonts_adapters import read_exchange_rate, rolling_split
from multidiff.metrics.forecasting import crps_sum
from multidiff.tasks.forecasting import TimeGradEstimator, TimeGradPredictor
from multidiff.tasks.forecasting.timegrad import PREDICTION_INPUT_NAMES

H = 10
TINY = dict(context_length=H, hidden_size=8, num_layers=1, residual_layers=2, residual_channels=4, batch_size=8,
            num_batches_per_epoch=8, epochs=1, num_parallel_samples=16, sampler="ddim", sampler_steps=4, seed=0)


@pytest.fixture(scope="module")
def exchange(data_dir):
    df = read_exchange_rate(data_dir / "exchange_rate").iloc[-400:]
    train, test, freq = rolling_split(df, H, 2)
    return df, train, test, freq


@pytest.fixture(scope="module")
def predictor(exchange):
    torch.set_num_threads(1)
    df, train, _, freq = exchange
    return TimeGradEstimator(freq=freq, prediction_length=H, target_dim=8, **TINY).train(train)


def _predict(predictor, ds, seed=0, **kw):
    torch.manual_seed(seed)
    return list(predictor.predict(ds, **kw))


def test_forecasts_are_gluonts_sample_forecasts(predictor, exchange):
    from gluonts.model.forecast import SampleForecast

    _, _, test, _ = exchange
    forecasts = _predict(predictor, test)
    assert len(forecasts) == 2 and all(isinstance(f, SampleForecast) for f in forecasts)
    assert forecasts[0].samples.shape == (16, H, 8) and forecasts[0].samples.dtype == np.float32
    assert np.isfinite(forecasts[0].samples).all()
    assert forecasts[1].start_date == pd.Period(exchange[0].index[-1], freq="B") + 1  # after each entry
    assert _predict(predictor, test, num_samples=5)[0].samples.shape == (5, H, 8)


def test_serialize_round_trip_gives_identical_samples(predictor, exchange, tmp_path):
    from gluonts.model.predictor import Predictor

    _, _, test, _ = exchange
    predictor.serialize(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gluonts-config.json", "predictor.json", "weights"]
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["config.json", "weights.safetensors"]
    loaded = Predictor.deserialize(tmp_path)
    assert isinstance(loaded, TimeGradPredictor)
    import json

    from multidiff.core.schedules import schedule_from_config

    settings = json.loads((tmp_path / "weights" / "config.json").read_text())["config"]
    assert schedule_from_config(settings["schedule"]) == loaded.model.schedule == predictor.model.schedule
    a, b = _predict(predictor, test, seed=7), _predict(loaded, test, seed=7)
    np.testing.assert_array_equal(a[0].samples, b[0].samples)
    assert not np.array_equal(a[0].samples, _predict(predictor, test, seed=8)[0].samples)


def test_sampler_choice_is_serialized(predictor, tmp_path):
    predictor.set_sampler("dpm_solver", 3)
    try:
        predictor.serialize(tmp_path)
        loaded = TimeGradPredictor.deserialize(tmp_path)
        assert (loaded.sampler, loaded.sampler_steps) == ("dpm_solver", 3)
    finally:
        predictor.set_sampler("ddim", 4)


def test_gluonts_evaluator_agrees(predictor, exchange):
    from gluonts.evaluation import MultivariateEvaluator, make_evaluation_predictions

    _, _, test, _ = exchange
    torch.manual_seed(0)
    fc_it, ts_it = make_evaluation_predictions(test, predictor, num_samples=16)
    forecasts, series = list(fc_it), list(ts_it)
    evaluator = MultivariateEvaluator(quantiles=(np.arange(20) / 20.0)[1:], target_agg_funcs={"sum": np.sum})
    agg, _ = evaluator(iter(series), iter(forecasts), num_series=len(test))
    samples = np.stack([f.samples for f in forecasts])
    targets = np.stack([s.to_numpy()[-H:] for s in series])
    assert crps_sum(samples, targets) == pytest.approx(agg["m_sum_mean_wQuantileLoss"], rel=1e-5)
    assert agg["m_sum_mean_wQuantileLoss"] > 0


def test_nan_in_history_is_masked_out_of_the_forecast(predictor, exchange):
    """NaN in the history reaches the network as unobserved (GluonTS' observed-values indicator): whatever
    stands behind the mask leaves the forecast unchanged, while the same values left observed change it."""
    from gluonts.dataset.common import ListDataset

    _, _, test, freq = exchange
    entry = dict(list(test)[0])
    target = entry["target"].copy()
    target[2, -8:-3] = np.nan  # both holes in the window the network reads (its past_length is 12)
    target[:, -10] = np.nan
    seen = []
    hook = predictor.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs), with_kwargs=True)
    try:
        forecasts = _predict(predictor, ListDataset([{**entry, "target": target}], freq=freq, one_dim_target=False))
    finally:
        hook.remove()
    assert np.isfinite(forecasts[0].samples).all()
    past_target, past_observed, *features = (seen[0][name] for name in PREDICTION_INPUT_NAMES)
    hidden = torch.from_numpy(np.isnan(target[:, -predictor.model.past_length:]).T)[None]  # (1, past, D)
    assert int(hidden.sum()) == 5 + 8
    assert torch.equal(past_observed == 0, hidden) and torch.isfinite(past_target).all()

    def sample(values, observed):
        torch.manual_seed(0)
        return predictor.model(values, observed, *features)

    reference = sample(past_target, past_observed)
    np.testing.assert_array_equal(forecasts[0].samples, reference[0].numpy())  # the inputs seen made the forecast
    filled = past_target.clone()
    filled[hidden] = 1e3
    torch.testing.assert_close(sample(filled, past_observed), reference)  # float32 sums may round differently
    assert not torch.allclose(sample(filled, torch.ones_like(past_observed)), reference, rtol=0.1)


def test_wrong_target_dim_is_a_clear_error(exchange):
    _, train, _, freq = exchange
    est = TimeGradEstimator(freq=freq, prediction_length=H, target_dim=5, **TINY)
    with pytest.raises(ValueError, match="has 8 series but the estimator was built with target_dim=5"):
        est.train(train)


def test_too_short_series_is_a_clear_error(exchange, predictor):
    from gluonts.dataset.common import ListDataset

    df, _, _, freq = exchange
    short = ListDataset([{"start": pd.Period(df.index[0], freq=freq), "target": df.to_numpy().T[:, :12]}], freq=freq,
                        one_dim_target=False)
    est = TimeGradEstimator(freq=freq, prediction_length=H, target_dim=8, **TINY)
    with pytest.raises(ValueError, match="12 time steps, too short: training needs at least 20"):
        est.train(short)
    tiny = ListDataset([{"start": pd.Period(df.index[0], freq=freq), "target": df.to_numpy().T[:, :4]}], freq=freq,
                       one_dim_target=False)
    with pytest.raises(ValueError, match="prediction needs at least 10"):
        _predict(predictor, tiny)


def test_univariate_and_wrong_freq_entries_are_clear_errors(exchange, predictor):
    from gluonts.dataset.common import ListDataset

    df, _, _, _ = exchange
    uni = ListDataset([{"start": pd.Period(df.index[0], freq="B"), "target": df.iloc[:, 0].to_numpy()}], freq="B")
    with pytest.raises(ValueError, match="1-D target.*MultivariateGrouper"):
        _predict(predictor, uni)
    daily = ListDataset([{"start": pd.Period("2020-01-01", freq="D"), "target": df.to_numpy().T}], freq="D",
                        one_dim_target=False)
    with pytest.raises(ValueError, match="frequency 'D' but the estimator was built with freq='B'"):
        _predict(predictor, daily)


@pytest.mark.parametrize("kwargs, message", [
    (dict(freq=None), "freq is required"),
    (dict(freq="fortnightly"), "not a pandas frequency"),
    (dict(target_dim=0), "target_dim must be a whole number >= 1, got 0"),
    (dict(prediction_length=-3), "prediction_length must be a whole number >= 1, got -3"),
    (dict(context_length=-1), r"context_length must be None \(prediction_length\) or a whole number >= 1, got -1"),
    (dict(sampler="euler_sde"), "sampler must be one of"),
])
def test_bad_estimator_arguments(kwargs, message):
    args = dict(freq="B", prediction_length=H, target_dim=8)
    with pytest.raises(ValueError, match=message):
        TimeGradEstimator(**{**args, **kwargs})


def test_trains_from_a_pandas_dataset_with_validation(exchange):
    from gluonts.dataset.pandas import PandasDataset

    from multidiff.datasets.gluonts_adapters import to_multivariate

    df = exchange[0].iloc[:120, :3]
    long = df.rename_axis("date").reset_index().melt(id_vars="date", var_name="series", value_name="value")
    uni = PandasDataset.from_long_dataframe(long, target="value", item_id="series", timestamp="date", freq="B")
    grouped = list(to_multivariate(uni))
    assert grouped[0]["target"].shape == (3, 120)
    np.testing.assert_allclose(grouped[0]["target"], df[sorted(df.columns)].to_numpy().T, rtol=1e-6)  # by item_id
    est = TimeGradEstimator(freq="B", prediction_length=H, target_dim=3, **{**TINY, "num_batches_per_epoch": 2})
    train = [{**grouped[0], "target": grouped[0]["target"][:, :-H]}]
    predictor = est.train(train, validation_data=grouped)
    assert _predict(predictor, grouped)[0].samples.shape == (16, H, 3)


def test_deserialize_takes_str_and_path(predictor, exchange, tmp_path):
    """Issue 15: loading from a folder given as a str failed with "unsupported operand type(s) for /"."""
    from pathlib import Path

    _, _, test, _ = exchange
    predictor.serialize(str(tmp_path / "as_str"))
    predictor.serialize(tmp_path / "as_path")
    for folder in (str(tmp_path / "as_str"), tmp_path / "as_path", Path(tmp_path / "as_str")):
        loaded = TimeGradPredictor.deserialize(folder)
        np.testing.assert_array_equal(_predict(loaded, test, seed=3)[0].samples,
                                      _predict(predictor, test, seed=3)[0].samples)
    with pytest.raises(TypeError, match="path must be a str or a pathlib.Path"):
        TimeGradPredictor.deserialize(None)
    with pytest.raises(FileNotFoundError, match="holds no saved predictor"):
        TimeGradPredictor.deserialize(str(tmp_path / "nothing"))


def test_weights_of_the_best_epoch_are_restored_without_files(exchange, tmp_path, monkeypatch):
    """The quiet trainer keeps GluonTS' behaviour: the epoch with the lowest train_loss wins."""
    import lightning.pytorch as pl

    class Record(pl.Callback):
        def __init__(self):
            self.epochs = []

        def on_train_epoch_end(self, trainer, module):
            state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            self.epochs.append((float(trainer.callback_metrics["train_loss"]), state))

    monkeypatch.chdir(tmp_path)
    record = Record()
    _, train, _, freq = exchange
    est = TimeGradEstimator(freq=freq, prediction_length=H, target_dim=8,
                            **{**TINY, "num_batches_per_epoch": 2, "epochs": 4, "lr": 0.3},
                            trainer_kwargs={"callbacks": [record]})
    trained = est.train(train)
    losses = [loss for loss, _ in record.epochs]
    assert len(losses) == 4 and np.argmin(losses) != 3, losses  # lr 0.3: the last epoch is not the best
    best = record.epochs[int(np.argmin(losses))][1]
    for name, value in trained.prediction_net.state_dict().items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0)
    assert list(tmp_path.iterdir()) == []


def test_paper_preset_is_the_estimators_defaults():
    """Issue 15: TimeGrad keeps its paper settings as a preset (Rasul et al. 2021)."""
    import inspect

    from multidiff.tasks.forecasting import PAPER_SETTINGS

    defaults = {k: v.default for k, v in inspect.signature(TimeGradEstimator.__init__).parameters.items()}
    assert {k: defaults[k] for k in PAPER_SETTINGS} == PAPER_SETTINGS
    est = TimeGradEstimator(freq="h", prediction_length=24, target_dim=7, **PAPER_SETTINGS)
    assert (est.model_kwargs["num_train_steps"], est.model_kwargs["hidden_size"], est.trainer_kwargs["max_epochs"]) == (100, 40, 20)


def test_seeded_training_leaves_the_global_generators_alone():
    """A seeded train() is reproducible and does not reseed the caller's generators: Python's, NumPy's and
    torch's next draws are the ones they would have given without it (it used to call seed_everything)."""
    from multidiff.datasets.gluonts_adapters import frame_to_dataset

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(40, 2)), index=pd.date_range("2000", periods=40, freq="h"))
    ds, freq = frame_to_dataset(df)
    est = TimeGradEstimator(freq=freq, prediction_length=3, target_dim=2, context_length=8, batch_size=4,
                            num_batches_per_epoch=2, epochs=1, num_parallel_samples=4, seed=0)
    draws = lambda: (random.random(), float(np.random.random()), float(torch.rand(1)))
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        expected = draws()
        random.setstate(states[0]), np.random.set_state(states[1]), torch.set_rng_state(states[2])
        first = est.train(ds)
        assert draws() == expected
        second = est.train(ds)  # the seed still fixes the run
        for a, b in zip(first.prediction_net.state_dict().values(), second.prediction_net.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    finally:
        random.setstate(states[0]), np.random.set_state(states[1]), torch.set_rng_state(states[2])


def test_both_estimators_share_one_vocabulary_and_the_train_config_route():
    """Issue 28: CSDI and TimeGrad take the same words (TrainConfig's, and GluonTS'
    ``num_batches_per_epoch``); TimeGrad's TrainConfig reaches Lightning's Trainer and Adam, and a
    field Lightning does not run here is refused; sampler names are stored as the core resolves them."""
    import dataclasses
    import inspect

    from multidiff.tasks.forecasting import CSDIForecastEstimator
    from multidiff.tasks.forecasting.timegrad import DEFAULT_TRAIN_CONFIG

    shared = {"epochs", "max_steps", "max_time", "lr", "train_config", "num_batches_per_epoch", "batch_size",
              "num_parallel_samples", "sampler", "sampler_steps", "seed", "device", "progress"}
    for cls in (CSDIForecastEstimator, TimeGradEstimator):
        assert shared <= set(inspect.signature(cls.__init__).parameters), cls
    config = dataclasses.replace(DEFAULT_TRAIN_CONFIG, weight_decay=0.5, grad_clip=0.0, max_steps=7)
    est = TimeGradEstimator(freq="h", prediction_length=4, target_dim=2, train_config=config, max_time=30, epochs=3,
                            sampler="dpm_solver_pp_2m")
    assert {k: est.trainer_kwargs[k] for k in ("max_epochs", "max_steps", "max_time", "gradient_clip_val")} == \
        {"max_epochs": 3, "max_steps": 7, "max_time": {"seconds": 30.0}, "gradient_clip_val": None}
    assert est.create_lightning_module().configure_optimizers().defaults["weight_decay"] == 0.5
    assert est.model_kwargs["sampler"] == "dpm_solver"  # the registered name, not the alias
    with pytest.raises(ValueError, match="lr_schedule='cosine' is not supported"):
        TimeGradEstimator(freq="h", prediction_length=4, target_dim=2,
                          train_config=dataclasses.replace(DEFAULT_TRAIN_CONFIG, lr_schedule="cosine"))
