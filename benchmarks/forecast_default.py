"""`multidiff.tasks.forecast(df, horizon)` as a user calls it (issues 15 and 32), on the last
rolling windows of a real frame, beside seasonal naive and the linear peer in the same run.

For each of the last ``--windows`` windows of ``--horizon`` steps, the frame is the ``--rows``
rows before it; ``forecast`` (defaults, or ``--max-time``: ``0`` is the zero-shot forecast of the
linear base and its residual windows) forecasts the window, and so do seasonal naive (the last
season repeated: a day for hourly data, a week of business days) and the linear peer
(``multidiff.tasks.forecasting.peers.linear_forecast``: a ridge per series on its last 168 values).
CRPS-sum (TimeGrad's metric, GluonTS' quantile grid) per window and its mean over windows; on data
with gaps (AQI-36) the sum runs over the series observed at each step, for forecasts and targets
alike. Wall time is the whole ``forecast`` call (training and sampling).

``--with-imputer`` adds what a user of the pretrained imputer (issue 31) would try: the horizon's
rows appended empty and filled by ``impute(df, max_time=0)`` (zero-shot, 100 samples).

    python benchmarks/forecast_default.py --dataset etth1                  # defaults, last 7 days
    python benchmarks/forecast_default.py --dataset aqi36 --max-time 0     # zero-shot on PM2.5
"""
import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

from multidiff.core.io import write_json_atomic
from multidiff.core.provenance import Run
from multidiff.datasets.aqi36 import load_aqi36
from multidiff.datasets.gluonts_adapters import read_etth1, read_exchange_rate
from multidiff.metrics.forecasting import crps
from multidiff.tasks import forecast, impute
from multidiff.tasks.forecasting import peers

READERS = {"etth1": (lambda d: read_etth1(d), 24), "exchange_rate": (lambda d: read_exchange_rate(d), 5),
           "aqi36": (lambda d: load_aqi36(d, download=False).ground.asfreq("h"), 24)}


def crps_sum_observed(samples: np.ndarray, target: np.ndarray) -> float:
    """CRPS of the sum over the series observed at each step: ``samples`` (S, H, D), ``target`` (H, D)."""
    seen = ~np.isnan(target)
    return crps((samples * seen).sum(-1)[None], np.where(seen, target, 0).sum(-1)[None])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(READERS), default="etth1")
    p.add_argument("--rows", type=int, default=2000, help="rows of history per window (default 2000)")
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--windows", type=int, default=7, help="the last WINDOWS rolling windows (default 7)")
    p.add_argument("--max-time", type=float, default=None, help="forecast(df, max_time=...); default: forecast's")
    p.add_argument("--model", default=None, help="forecast(df, model=...); default: forecast's default")
    p.add_argument("--data", default=None, help="the data folder (default: the shared data folder)")
    p.add_argument("--with-imputer", action="store_true",
                   help="also forecast by imputing appended empty rows with the pretrained imputer, zero-shot")
    p.add_argument("--out", default=None, help="JSON (default benchmarks/out/forecast_default_DATASET.json)")
    a = p.parse_args(argv)
    read, season = READERS[a.dataset]
    full = read(a.data)
    kwargs = {**({"model": a.model} if a.model else {}), **({"max_time": a.max_time} if a.max_time is not None else {})}
    run, rows = Run(), []
    for w in range(a.windows):
        end = len(full) - a.horizon * (a.windows - 1 - w)
        df, truth = full.iloc[end - a.horizon - a.rows:end - a.horizon], full.iloc[end - a.horizon:end].to_numpy()
        t0 = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = forecast(df, a.horizon, **kwargs)
        wall = time.time() - t0
        naive = peers.seasonal_naive(df.to_numpy(), a.horizon, season)
        linear = peers.linear_forecast(df.to_numpy(), a.horizon, lags=168)
        rows.append({"window_end": str(df.index[-1] + (df.index[-1] - df.index[-2]) * a.horizon),
                     "multidiff": crps_sum_observed(fc.samples, truth), "seasonal naive": crps_sum_observed(naive, truth),
                     "linear peer": crps_sum_observed(linear, truth), "wall_seconds": wall})
        if a.with_imputer:
            future = full.iloc[end - a.horizon:end].copy()
            future.loc[:, :] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = impute(pd.concat([df, future]), n_samples=100, max_time=0, return_result=True)
            rows[-1]["pretrained imputer, zero-shot"] = crps_sum_observed(res.samples[:, -a.horizon:], truth)
        print(json.dumps(rows[-1]), flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "window_end"}
    out = {"dataset": a.dataset, "call": f"forecast(df, {a.horizon}" + "".join(f", {k}={v!r}" for k, v in kwargs.items()) + ")",
           "rows_per_window": a.rows, "windows": rows, "mean": mean, **run.provenance()}
    print(json.dumps(mean))
    write_json_atomic(a.out or f"benchmarks/out/forecast_default_{a.dataset}.json", out)
    return out


if __name__ == "__main__":
    main()
