"""A small CSDI trained for a few hundred steps on real AQI-36 months must beat linear
interpolation on held-out points: whole days hidden at one station at a time (a sensor outage),
where the other stations carry the information that interpolation cannot use."""
import numpy as np
import pytest
import torch

from multidiff.datasets.aqi36 import load_aqi36
from multidiff.metrics.imputation import crps_quantile, masked_mae
from multidiff.tasks.imputation import Imputer
from multidiff.tasks.imputation.evaluate import _interpolate


@pytest.mark.slow  # a few hundred training steps on real data
def test_small_csdi_beats_linear_interpolation_on_real_outages(data_dir):
    d = load_aqi36(data_dir / "air_quality_pm25")
    cols = list(d.ground.columns[:6])
    imp = Imputer(window=24, train_stride=2, channels=16, layers=1, heads=2, max_steps=250, batch_size=32,
                  lr=3e-3, progress=False, device="cpu", seed=0, pretrained=None)
    imp.columns_ = cols
    imp.fit_arrays([d.ground[d.ground.index.month == m][cols].to_numpy() for m in (1, 2)])
    week = (d.ground.index.month == 3) & (d.ground.index.day <= 10)  # a test month, unseen in training
    truth = d.ground[week][cols].to_numpy()
    rng = np.random.default_rng(0)
    hidden = np.zeros(truth.shape, dtype=bool)
    for j in range(len(cols)):
        for start in rng.choice(len(truth) - 24, 3, replace=False):
            hidden[start:start + 24, j] = True
    hidden &= ~np.isnan(truth)
    gappy = np.where(hidden, np.nan, truth)
    samples = imp.sample(gappy, 8)
    mae = masked_mae(np.median(samples, 0), truth, hidden)
    mae_linear = masked_mae(_interpolate(gappy), truth, hidden)
    assert mae < 0.85 * mae_linear, (mae, mae_linear)
    assert np.isfinite(crps_quantile(samples, truth, hidden))
