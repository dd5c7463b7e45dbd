"""The forecasters a user would try before a diffusion model, as plain functions of a history:
seasonal naive, and a linear direct forecaster in the spirit of DLinear (Zeng et al., AAAI 2023,
"Are Transformers Effective for Time Series Forecasting?"): one linear map from the last ``lags``
values of a series to its next ``horizon`` values.

Every peer takes ``history``, a (T, D) float array (rows = time steps, one column per series), and
returns sample paths of shape (n_samples, horizon, D) that continue it. NaN in the history is
filled first, per series, by linear interpolation along time, the edges holding the nearest
observed value (pandas ``interpolate(limit_direction="both")``); a series with no value at all is
refused. Randomness comes from a local ``np.random.default_rng(seed)``: the global NumPy and torch
generators are neither used nor changed.

:func:`deepar` is the trained peer: GluonTS' torch DeepAR (Salinas et al., IJF 2020), one
univariate model over all series, trained on a GluonTS dataset and forecasting every window of a
test set; it runs on the global generators seeded by ``seed`` and puts them back afterwards.
:func:`~.evaluate.evaluate_peer` scores the history peers on a test set.
"""
from __future__ import annotations

import tempfile
import time
from typing import Optional

import numpy as np
import pandas as pd

from ...core.device import seeded
from ...core.validate import check_whole

__all__ = ["ALPHAS", "MIN_WINDOWS", "fill_history", "seasonal_naive", "linear_forecast", "deepar"]

# ridge penalties tried by the linear peer (RidgeCV's efficient leave-one-out), on standardised series
ALPHAS = np.logspace(-2, 4, 13)
# training windows the linear peer needs at least: fewer leave its penalty and spread unestimated
MIN_WINDOWS = 10


def fill_history(history) -> np.ndarray:
    """``history`` (T, D) -> a float64 copy with every NaN filled by linear interpolation along
    time per series (edges hold the nearest observed value). ``ValueError`` for a history that is
    not 2-D or empty, holds infinities, or has a series without any observed value."""
    x = np.array(history, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"history must be a (T, D) array of T >= 1 time steps and D >= 1 series, got shape "
                         f"{x.shape}; a single series is history[:, None]")
    if np.isinf(x).any():
        raise ValueError("history holds infinite values; mark missing values as NaN")
    empty = np.flatnonzero(np.isnan(x).all(axis=0))
    if empty.size:
        raise ValueError(f"series {empty.tolist()} of the history have no observed value; drop them")
    if np.isnan(x).any():
        x = pd.DataFrame(x).interpolate(method="linear", limit_direction="both").to_numpy()
    return x


def seasonal_naive(history, horizon: int, season: int) -> np.ndarray:
    """The last ``season`` values of each series repeated over the ``horizon``: one sample path,
    shape (1, horizon, D) (``season=1`` holds the last value). NaN in ``history`` is interpolated
    first (see the module). ``ValueError`` when the history is shorter than ``season``."""
    horizon, season = check_whole("horizon", horizon), check_whole("season", season)
    x = fill_history(history)
    if len(x) < season:
        raise ValueError(f"seasonal_naive needs a history of at least season={season} rows, got {len(x)}")
    return x[len(x) - season + np.arange(horizon) % season][None]


def linear_forecast(history, horizon: int, lags: int = 168, n_samples: int = 100, seed: int = 0) -> np.ndarray:
    """A direct multi-output ridge regression per series (DLinear-style, Zeng et al. 2023):
    sample paths (n_samples, horizon, D) continuing ``history`` (T, D).

    Per series, standardised by its mean and standard deviation (so that one penalty grid, ``ALPHAS``,
    fits series of any scale), scikit-learn's ``RidgeCV`` maps the last ``lags`` values to the next
    ``horizon`` ones, fitted on every window of the history, its penalty picked by leave-one-out
    error. The mean forecast is that map applied to the last ``lags`` values; the spread is Gaussian
    with, per step, the standard deviation of the map's residuals on its training windows, drawn
    independently per step and series from ``np.random.default_rng(seed)``. NaN in ``history`` is
    interpolated first (see the module).

    The history needs ``lags + horizon + MIN_WINDOWS - 1`` rows (``MIN_WINDOWS`` training windows);
    a shorter one raises ``ValueError`` naming that length and the ``lags`` that would fit.
    """
    horizon, lags, seed = check_whole("horizon", horizon), check_whole("lags", lags), check_whole("seed", seed, 0)
    n_samples = check_whole("n_samples", n_samples)
    from sklearn.linear_model import RidgeCV

    x = fill_history(history)
    need = lags + horizon + MIN_WINDOWS - 1
    if len(x) < need:
        fits = len(x) - horizon - MIN_WINDOWS + 1
        hint = f"; pass lags <= {fits}" if fits >= 1 else "; forecast a shorter horizon"
        raise ValueError(f"linear_forecast needs a history of at least {need} rows (lags={lags} + horizon={horizon} "
                         f"+ {MIN_WINDOWS - 1}, for {MIN_WINDOWS} training windows), got {len(x)}{hint}")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n_samples, horizon, x.shape[1]))
    paths = np.empty_like(noise)
    for d in range(x.shape[1]):
        loc, scale = x[:, d].mean(), x[:, d].std()
        scale = scale if scale > 1e-12 * (1 + abs(loc)) else 1.0  # a constant series stays constant
        z = (x[:, d] - loc) / scale
        windows = np.lib.stride_tricks.sliding_window_view(z, lags + horizon)
        inputs, targets = windows[:, :lags], windows[:, lags:]
        ridge = RidgeCV(alphas=ALPHAS).fit(inputs, targets)
        spread = (targets - ridge.predict(inputs)).std(axis=0)           # (horizon,)
        mean = ridge.predict(z[-lags:][None])[0]
        paths[:, :, d] = (mean + spread * noise[:, :, d]) * scale + loc
    return paths


def deepar(train, test, horizon: int, freq: str, max_time: float, n_samples: int = 100, seed: int = 0,
           epochs: Optional[int] = None, validation=None) -> dict:
    """GluonTS' torch DeepAR (Salinas et al., IJF 2020) with its defaults as a peer: one univariate
    model over all series of ``train`` (GluonTS entries whose ``target`` is (D, T)), trained for
    ``max_time`` seconds (Lightning's ``max_time``) or at most ``epochs`` epochs of 50 batches; with
    ``validation`` (entries like ``train``) GluonTS' ``ModelCheckpoint`` monitors ``val_loss`` and
    the best epoch's weights are restored. Then ``n_samples`` paths for the last ``horizon`` steps of
    every entry of ``test``.

    Returns ``samples`` (N, n_samples, horizon, D) for the N test entries, their ``targets``
    (N, horizon, D), ``train_seconds`` and ``sampling_seconds``. Python's, NumPy's and torch's
    global generators are seeded by ``seed`` for the run and put back afterwards."""
    import torch
    from gluonts.evaluation import make_evaluation_predictions
    from gluonts.torch.model.deepar import DeepAREstimator

    from ...datasets.gluonts_adapters import to_univariate

    dim = np.asarray(next(iter(test))["target"]).shape[0]
    with seeded(seed), tempfile.TemporaryDirectory() as tmp:  # tmp: Lightning's checkpoint folder
        est = DeepAREstimator(freq=freq, prediction_length=horizon,
                              trainer_kwargs={"max_epochs": epochs or 10**6, "max_time": {"seconds": max_time},
                                              "logger": False, "enable_progress_bar": False,
                                              "enable_model_summary": False, "default_root_dir": tmp})
        t0 = time.perf_counter()
        predictor = est.train(to_univariate(train),
                              validation_data=None if validation is None else to_univariate(validation))
        train_s = time.perf_counter() - t0
        torch.manual_seed(seed)
        fc_it, ts_it = make_evaluation_predictions(to_univariate(test), predictor, num_samples=n_samples)
        t0 = time.perf_counter()
        forecasts = list(fc_it)
        sample_s = time.perf_counter() - t0
        series = list(ts_it)
    s = np.stack([f.samples for f in forecasts])                       # (N * D, S, H)
    y = np.stack([np.asarray(ts).ravel()[-horizon:] for ts in series])
    return {"samples": s.reshape(-1, dim, n_samples, horizon).transpose(0, 2, 3, 1),
            "targets": y.reshape(-1, dim, horizon).transpose(0, 2, 1),
            "train_seconds": train_s, "sampling_seconds": sample_s}
