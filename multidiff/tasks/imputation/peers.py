"""What a user would pick instead of multidiff, run on the same protocol: the column mean,
linear interpolation, the regression over it (:mod:`.regression`), scikit-learn's KNNImputer
and IterativeImputer, and PyPOTS' SAITS (Du et al. 2023) and CSDI when PyPOTS is installed
(``pip install multidiff[bench]``).

Every peer is a function ``(train_series, test_inputs, budget_s) -> (point estimates per test
input, samples or None, info)``. ``train_series`` are (rows, K) arrays with NaN (the training
data), ``test_inputs`` the arrays to fill. Deep peers train for ``budget_s`` seconds of wall
time (whole epochs, stopping when the next would overrun), so all models get the same CPU budget.
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from .regression import ridge_impute

__all__ = ["PEERS", "interpolation", "regression", "column_mean", "knn", "iterative", "pypots_saits", "pypots_csdi",
           "pypots_available"]


def interpolation(train, inputs, budget_s=None):
    """Linear interpolation along time per column; edges hold the nearest value; a column
    with no value falls back to its training mean."""
    mean = np.nanmean(np.concatenate(train), axis=0)
    out = [pd.DataFrame(x).interpolate(method="linear", limit_direction="both").to_numpy() for x in inputs]
    return [np.where(np.isnan(o), mean, o) for o in out], None, {}


def regression(train, inputs, budget_s=None):
    """The per-column ridge over linear interpolation of :mod:`.regression` (issue 31), fitted on
    each input itself (closed form, about a second)."""
    t0 = time.perf_counter()
    out = [ridge_impute(x, seed=0)[0] for x in inputs]
    return out, None, {"train_s": time.perf_counter() - t0}


def column_mean(train, inputs, budget_s=None):
    """Each column's mean over the training series, in every missing entry."""
    mean = np.nanmean(np.concatenate(train), axis=0)
    return [np.where(np.isnan(x), mean, x) for x in inputs], None, {}


def _sklearn(imputer):
    def run(train, inputs, budget_s=None):
        t0 = time.perf_counter()
        imputer.fit(np.concatenate(train))
        return [imputer.transform(x) for x in inputs], None, {"train_s": time.perf_counter() - t0}
    return run


def knn(train, inputs, budget_s=None):
    """scikit-learn KNNImputer (5 neighbours among the training time steps, rows = time steps)."""
    from sklearn.impute import KNNImputer
    return _sklearn(KNNImputer(n_neighbors=5))(train, inputs)


def iterative(train, inputs, budget_s=None):
    """scikit-learn IterativeImputer (Bayesian ridge per column on the others, MICE-style)."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer
    return _sklearn(IterativeImputer(max_iter=10, random_state=0))(train, inputs)


def pypots_available() -> bool:
    """Whether PyPOTS imports (``pip install multidiff[bench]``), for the SAITS and CSDI peers."""
    try:
        import pypots  # noqa: F401
    except ImportError:
        return False
    return True


def _windows(series: Sequence[np.ndarray], length: int, stride: int) -> np.ndarray:
    out = []
    for s in series:
        for start in range(0, len(s) - length + 1, stride):
            out.append(s[start:start + length])
    return np.stack(out)


def _fit_for(make: Callable[[int], object], data: dict, budget_s: float) -> tuple[object, float, int]:
    """Train one epoch at a time (PyPOTS' ``fit`` continues from the current weights and
    optimizer) until the next epoch would end more than half an epoch past ``budget_s``."""
    model, epochs, t0 = make(1), 0, time.perf_counter()
    while True:
        model.fit(data)
        epochs += 1
        elapsed = time.perf_counter() - t0
        if elapsed + 0.5 * elapsed / epochs > budget_s:
            return model, elapsed, epochs


def _pypots(kind: str, window: int, n_samples: int, sizes: dict, seed: int = 0):
    def run(train, inputs, budget_s):
        from ...core.device import seeded
        with seeded(seed):  # PyPOTS draws from the global generators: seed them, and give the caller's back
            return _run(train, inputs, budget_s)

    def _run(train, inputs, budget_s):
        import torch
        from pypots.imputation import CSDI, SAITS

        k = train[0].shape[1]
        mean = np.nanmean(np.concatenate(train), axis=0)
        std = np.nanstd(np.concatenate(train), axis=0)
        std = np.where(std > 0, std, 1.0)
        data = {"X": ((_windows(train, window, 1) - mean) / std).astype(np.float32)}
        common = dict(n_steps=window, n_features=k, batch_size=16, verbose=False, device="cpu",
                      model_saving_strategy=None)
        if kind == "saits":
            make = lambda e: SAITS(**common, **sizes, epochs=e)
        else:
            make = lambda e: CSDI(**common, **sizes, epochs=e)
        model, train_s, epochs = _fit_for(make, data, budget_s)
        points, samples, t0 = [], [], time.perf_counter()
        for x in inputs:
            starts = list(range(0, len(x) - window + 1, window))
            if starts[-1] != len(x) - window:
                starts.append(len(x) - window)
            wins = np.stack([(x[s:s + window] - mean) / std for s in starts]).astype(np.float32)
            if kind == "saits":
                imp = model.predict({"X": wins})["imputation"][:, None]
            else:
                imp = model.predict({"X": wins}, n_sampling_times=n_samples)["imputation"]  # (W, S, L, K)
            filled = np.full((imp.shape[1], len(x), k), np.nan)
            for w, s in enumerate(starts):  # non-overlapping; the last window, aligned to the end, wins
                filled[:, s:s + window] = imp[w]
            filled = filled * std + mean
            filled = np.where(np.isnan(x)[None], filled, x[None])
            points.append(np.median(filled, 0))
            samples.append(filled)
        info = {"train_s": train_s, "epochs": epochs, "sample_s": time.perf_counter() - t0,
                "params": int(sum(p.numel() for p in model.model.parameters())) if hasattr(model, "model") else None}
        torch.set_num_threads(torch.get_num_threads())
        return points, (samples if kind == "csdi" else None), info
    return run


def pypots_saits(window: int, seed: int = 0):
    """PyPOTS SAITS (Du et al. 2023), a CPU-sized configuration: 2 layers, d_model 128."""
    return _pypots("saits", window, 1, dict(n_layers=2, d_model=128, n_heads=4, d_k=32, d_v=32, d_ffn=128,
                                            dropout=0.1), seed)


def pypots_csdi(window: int, n_samples: int, channels: int = 32, layers: int = 2, heads: int = 4, seed: int = 0):
    """PyPOTS CSDI (Tashiro et al. 2021) with the same size as multidiff's default."""
    return _pypots("csdi", window, n_samples, dict(n_layers=layers, n_heads=heads, n_channels=channels,
                                                   d_time_embedding=128, d_feature_embedding=16,
                                                   d_diffusion_embedding=128), seed)


PEERS: dict[str, Callable] = {"mean": column_mean, "linear interpolation": interpolation,
                              "regression (ridge over interpolation)": regression,
                              "sklearn KNNImputer": knn, "sklearn IterativeImputer": iterative}
