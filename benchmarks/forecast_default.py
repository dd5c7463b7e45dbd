"""`multidiff.tasks.forecast(df, horizon)` with defaults, as a new user calls it (issue 15).

The frame: 2000 hourly rows of ETTh1 (all 7 columns), ending 24 hours before the file's end;
the forecast of the next 24 hours is scored against the real values next to seasonal naive (the
same hours one day earlier). Reports the wall time of the whole call (training and sampling), the
peak memory, and CRPS / CRPS-sum / ND of the forecast.

    python benchmarks/forecast_default.py                     # default model (csdi)
    python benchmarks/forecast_default.py --model timegrad
"""
import argparse
import json
import os
import resource
import time

import numpy as np

from multidiff.core.checkpoint import write_json_atomic
from multidiff.datasets.gluonts_adapters import read_etth1
from multidiff.metrics.forecasting import forecast_metrics
from multidiff.tasks import forecast


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--model", default=None, help="forecast(df, model=...); default: forecast's default")
    p.add_argument("--data", default=None, help="folder holding ETTh1.csv (default: the shared data folder)")
    p.add_argument("--out", default="benchmarks/out/forecast_default.json")
    a = p.parse_args(argv)
    full = read_etth1(a.data)
    df, future = full.iloc[-a.rows - a.horizon:-a.horizon], full.iloc[-a.horizon:]
    load_before = os.getloadavg()
    t0 = time.time()
    fc = forecast(df, a.horizon, **({"model": a.model} if a.model else {}))
    wall = time.time() - t0
    truth = future.to_numpy()[None]                                    # (1, H, D)
    naive = df.to_numpy()[-24:][np.arange(a.horizon) % 24][None, None]  # (1, 1, H, D)
    out = {"frame": f"ETTh1 {a.rows} rows x {df.shape[1]} columns ending {df.index[-1]}",
           "call": f"forecast(df, {a.horizon}" + (f", model={a.model!r})" if a.model else ")"),
           "wall_seconds": wall, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "load_before": load_before, "load_after": os.getloadavg(),
           "forecast": forecast_metrics(fc.samples[None], truth),
           "seasonal naive (one day earlier)": forecast_metrics(naive, truth),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(out, indent=1))
    write_json_atomic(a.out, out)
    return out


if __name__ == "__main__":
    main()
