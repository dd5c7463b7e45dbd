"""The forecasting benchmark protocol: score a predictor on rolling test windows."""
from __future__ import annotations

import time
from typing import Callable, Dict

import numpy as np
import torch

from ...metrics.forecasting import forecast_metrics

__all__ = ["evaluate", "evaluate_peer"]


def evaluate(predictor, test_ds, num_samples: int = 100, seed: int = 0) -> Dict[str, float]:
    """Score ``predictor`` on the test entries (last ``prediction_length`` of each is the target):
    CRPS, CRPS-sum, ND, NRMSE-sum as TimeGrad reports them, plus sampling time in seconds."""
    from gluonts.evaluation import make_evaluation_predictions

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fc_it, ts_it = make_evaluation_predictions(test_ds, predictor, num_samples=num_samples)
        t0 = time.perf_counter()
        forecasts = list(fc_it)
        seconds = time.perf_counter() - t0
    h = predictor.prediction_length
    targets = np.stack([np.asarray(ts)[-h:] for ts in ts_it])          # (N, H, D)
    samples = np.stack([np.asarray(f.samples) for f in forecasts])     # (N, S, H, D)
    return {**forecast_metrics(samples, targets), "sampling_seconds": seconds}


def evaluate_peer(forecaster: Callable[[np.ndarray], np.ndarray], test_ds, horizon: int) -> Dict[str, float]:
    """Score a history peer (:mod:`.peers`) as :func:`evaluate` scores a predictor: on every test
    entry (``target`` (D, T), its last ``horizon`` steps the target) ``forecaster(history)`` gets the
    history before them as a (T - horizon, D) array and returns sample paths (S, horizon, D). The
    metrics of :func:`~multidiff.metrics.forecasting.forecast_metrics`, plus ``seconds``: the time of
    all its fits and forecasts."""
    samples, targets = [], []
    t0 = time.perf_counter()
    for entry in test_ds:
        y = np.asarray(entry["target"], dtype=np.float64).T  # (T, D)
        samples.append(forecaster(y[:-horizon]))
        targets.append(y[-horizon:])
    seconds = time.perf_counter() - t0
    return {**forecast_metrics(np.stack(samples), np.stack(targets)), "seconds": seconds}
