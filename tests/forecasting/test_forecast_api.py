"""The pandas API, the fan chart, the CLI round trip and a learning check on real ETTh1 data."""
import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.datasets.gluonts_adapters import read_etth1, rolling_split
from multidiff.metrics.forecasting import coverage, crps
from multidiff.tasks import forecast
from multidiff.tasks.forecasting import TimeGradEstimator

TINY = dict(context_length=12, hidden_size=8, num_layers=1, residual_layers=2, residual_channels=4, batch_size=8,
            num_batches_per_epoch=6, max_epochs=1, sampler="ddim", sampling_steps=4, lags_seq=[1, 24])


@pytest.fixture(scope="module")
def etth1(data_dir):
    return read_etth1(data_dir / "ett")


def test_forecast_frames(etth1):
    df = etth1.iloc[-300:, :3].copy()
    df.iloc[-40:-30, 1] = np.nan  # gaps in the history are masked
    before = df.copy()
    fc = forecast(df, horizon=6, n_samples=20, quantiles=(0.1, 0.5, 0.9), **TINY)
    pd.testing.assert_frame_equal(df, before)
    expected_index = pd.date_range(df.index[-1], periods=7, freq="h")[1:]
    for q in (0.1, 0.5, 0.9):
        assert fc[q].shape == (6, 3) and fc[q].index.equals(expected_index) and list(fc[q].columns) == list(df.columns)
    assert (fc[0.1] <= fc[0.5]).all().all() and (fc[0.5] <= fc[0.9]).all().all()
    assert fc.samples.shape == (20, 6, 3) and np.isfinite(fc.samples).all()
    long = fc.to_long()
    assert list(long.columns) == ["timestamp", "series", "mean", "q0.1", "q0.5", "q0.9"] and len(long) == 18
    with pytest.raises(KeyError, match="quantile 0.3 was not computed"):
        fc[0.3]


def test_fan_chart_png(etth1, tmp_path):
    from multidiff.tasks.forecast_plot import fan_chart

    df = etth1.iloc[-200:, :2]
    fc = forecast(df, horizon=4, n_samples=10, **TINY)
    fan_chart(fc, tmp_path / "fan.png", series=["HULL"], history=48)
    assert (tmp_path / "fan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"series \['nope'\] are not in the forecast"):
        fan_chart(fc, tmp_path / "x.png", series=["nope"])


def test_forecast_rejects_irregular_frame(etth1):
    df = etth1.iloc[-100:, :2].drop(etth1.index[-50])
    with pytest.raises(ValueError, match="irregular"):
        forecast(df, horizon=4, freq="h", **TINY)


def test_cli_round_trip(etth1, tmp_path):
    from multidiff.cli import main

    src = tmp_path / "ett.csv"
    etth1.iloc[-200:, :2].reset_index().to_csv(src, index=False)
    out, model = tmp_path / "fc.csv", tmp_path / "model"
    common = ["--horizon", "5", "--samples", "8", "--sampler", "ddim", "--steps", "3"]
    tiny = ["--epochs", "1", "--batches-per-epoch", "3", "--batch-size", "8", "--hidden-size", "8", "--context-length", "8"]
    assert main(["forecast", str(src), "-o", str(out), "--save-model", str(model), *common, *tiny]) == 0
    first = pd.read_csv(out)
    assert list(first.columns) == ["timestamp", "series", "mean", "q0.1", "q0.5", "q0.9"] and len(first) == 10
    assert set(first["series"]) == {"HUFL", "HULL"}
    assert pd.to_datetime(first["timestamp"]).min() == etth1.index[-1] + pd.Timedelta(hours=1)
    out2 = tmp_path / "fc2.csv"
    assert main(["forecast", str(src), "-o", str(out2), "--model", str(model), *common]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out2), first)  # same seed, same weights, same forecast
    assert main(["forecast", str(src), "--time-column", "nope", "--horizon", "3"]) == 2


def test_training_learns_calibrated_quantiles(etth1):
    """A few dozen batches on real hourly data must beat the untrained network by a wide margin
    and give 10-90 % bands that cover a sensible share of the realised values."""
    df = etth1.iloc[-24 * 40:]
    train, test, freq = rolling_split(df, 24, 3)
    kw = {**TINY, "context_length": 24, "hidden_size": 16, "residual_channels": 8, "num_batches_per_epoch": 40,
          "batch_size": 16, "lr": 3e-3, "seed": 0}
    est = TimeGradEstimator(freq=freq, prediction_length=24, target_dim=7, **kw)
    untrained = est.create_predictor(est.create_transformation(), est.create_lightning_module())
    trained = est.train(train)
    scores = {}
    for name, p in (("untrained", untrained), ("trained", trained)):
        torch.manual_seed(0)
        from gluonts.evaluation import make_evaluation_predictions

        fc_it, ts_it = make_evaluation_predictions(test, p, num_samples=32)
        samples = np.stack([f.samples for f in fc_it])
        targets = np.stack([np.asarray(ts)[-24:] for ts in ts_it])
        inside = coverage(samples, targets, 0.9) - coverage(samples, targets, 0.1)
        scores[name] = (crps(samples, targets), inside)
    assert scores["trained"][0] < 0.5 * scores["untrained"][0], scores
    assert 0.4 < scores["trained"][1] < 0.99, scores  # the untrained net covers everything (1.0)
