"""Rows per second that a fitted Imputer fills on a local Dask cluster of 1 and of 2 worker processes
(`multidiff.tasks.imputation.dask.impute`, one long series split by time across partitions).

The frame: ROWS x 10 hourly series (a daily and a weekly cycle, a phase per column, AR(1) noise;
seed 0) with 5 % of the entries set to NaN at random. The imputer (defaults: window 36, the fast
sampler ddim with 10 steps) is fitted on the first FIT_ROWS rows for at most MAX_TIME seconds, once,
in this process; N_SAMPLES samples per missing value (the median is the fill). Each cluster has
`threads_per_worker=1` (Dask sets OMP_NUM_THREADS=1 in its workers) and listens on 127.0.0.1 only.
Dask also sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which fixes glibc's mmap threshold at
128 kB: every large torch temporary is then mapped and unmapped, which halved the sampling speed
here. The clusters unset it (docs/scaling.md), unless --dask-malloc-default.
The frame is first persisted on the workers, then the timed part is `impute(ddf, imputer)` (one
pass for the partition edges, then the imputation, kept on the workers with `persist`). Prints
JSON and a Markdown table, and writes the JSON to benchmarks/out/impute_dask_<rows>.json.

    python benchmarks/impute_dask.py --rows 1000000 --n-samples 1 --partitions 8 --check   # RESULTS.md (issue 11)
    python benchmarks/impute_dask.py --rows 20000 --max-time 20 --partitions 4 --check      # smoke run
"""
import argparse
import json
import os
import pickle
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.signal import lfilter

import dask
import dask.dataframe as dd
from distributed import Client, LocalCluster, wait

from multidiff.core.io import write_json_atomic
from multidiff.core.provenance import Run, load_average
from multidiff.metrics.tables import markdown_table
from multidiff.tasks.imputation import Imputer
from multidiff.tasks.imputation.dask import impute, shippable

COLS = 10


def frame(rows: int, nan: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(truth, with NaN): ``rows`` hourly rows of ``COLS`` columns, ``nan`` of the entries hidden."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    phase = rng.uniform(0, 2 * np.pi, COLS)
    cycles = 3 * np.sin(2 * np.pi * t / 24 + phase) + np.sin(2 * np.pi * t / (24 * 7) + 2 * phase)
    noise = lfilter([1.0], [1.0, -0.9], rng.normal(size=(rows, COLS)), axis=0)  # AR(1), phi = 0.9
    truth = pd.DataFrame(10 + cycles + noise, columns=[f"s{j}" for j in range(COLS)],
                         index=pd.date_range("2020-01-01", periods=rows, freq="h"))
    return truth, truth.mask(rng.random(truth.shape) < nan)


def run(df: pd.DataFrame, imputer: Imputer, workers: int, partitions: int, malloc_default: bool) -> dict:
    environ = {} if malloc_default else {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(environ), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        ddf = dd.from_pandas(df, npartitions=partitions).persist()
        wait(ddf)
        client.run(lambda: __import__("multidiff.tasks.imputation.dask"))  # imports are not what we measure
        trim = set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values())
        load, t0 = load_average(), time.perf_counter()
        out = impute(ddf, imputer).persist()
        wait(out)
        wall = time.perf_counter() - t0
        filled = out.compute()
    return {"workers": workers, "partitions": partitions, "worker_malloc_trim_threshold": sorted(map(str, trim)), "wall_s": wall, "rows_per_s": len(df) / wall,
            "load_before": load, "load_after": load_average(), "filled": filled}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--nan", type=float, default=0.05)
    p.add_argument("--workers", default="1,2", help="cluster sizes to time, comma-separated")
    p.add_argument("--partitions", type=int, default=16, help="partitions of the frame (the same for every cluster)")
    p.add_argument("--n-samples", type=int, default=10)
    p.add_argument("--fit-rows", type=int, default=20_000)
    p.add_argument("--max-time", type=float, default=60.0, help="training budget in seconds")
    p.add_argument("--check", action="store_true", help="also impute with pandas in this process (one thread) and "
                                                         "compare: equal values, and its rows per second")
    p.add_argument("--dask-malloc-default", action="store_true",
                   help="keep Dask's MALLOC_TRIM_THRESHOLD_=65536 in the workers (slower; see the docstring)")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    run = Run()
    torch.set_num_threads(1)  # this process fits (and checks) on one core, as each worker imputes
    truth, df = frame(a.rows, a.nan)
    hidden = df.isna().to_numpy()
    # n_samples=10: the setting of the imputation benchmarks in docs/imputation.md (ddim-10, 10 samples);
    # the cost is linear in it, the median of 10 draws is a stable fill
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # pretrained=None: a series split by time takes a CSDI imputer (the pretrained default blends in a
        # per-frame regression, which needs by=); the setting the table in RESULTS.md was measured with
        imputer = Imputer(n_samples=a.n_samples, max_time=a.max_time, progress=False, seed=0, pretrained=None).fit(
            df.iloc[:min(a.fit_rows, len(df))])
    fit_s = time.perf_counter() - t0
    settings = {"rows": a.rows, "cols": COLS, "nan": a.nan, "n_samples": a.n_samples, "sampler": imputer.sampler,
                "sampler_steps": imputer.sampler_steps, "window": imputer.window, "fit_rows": min(a.fit_rows, a.rows),
                "fit_s": fit_s, "train_steps": imputer.train_result_.optimizer_steps,
                "overlap_rows": imputer.window_sampler().segment_overlap(a.rows, len(imputer.columns_), a.n_samples),
                "shipped_bytes": len(pickle.dumps(shippable(imputer)))}
    print(f"n_samples={a.n_samples} ({imputer.sampler}, {imputer.sampler_steps} steps), fitted in {fit_s:.0f} s",
          file=sys.stderr)
    runs = []
    for workers in (int(w) for w in a.workers.split(",")):
        r = run(df, imputer, workers, a.partitions, a.dask_malloc_default)
        filled = r.pop("filled")
        r["nan_left"] = int(filled.isna().to_numpy().sum())
        r["mae"] = float(np.abs(filled.to_numpy()[hidden] - truth.to_numpy()[hidden]).mean())
        runs.append(r)
        print(f"{workers} worker(s): {r['wall_s']:.1f} s, {r['rows_per_s']:.0f} rows/s", file=sys.stderr)
        if a.check:
            r["_filled"] = filled
    interp = df.interpolate(limit_direction="both").to_numpy()
    out = {"settings": settings, "runs": runs, "interpolation_mae": float(np.abs(interp[hidden] - truth.to_numpy()[hidden]).mean()),
           **run.provenance(), "machine": {"platform": platform.platform(), "torch": torch.__version__}}
    if a.check:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = imputer.impute(df)
        wall = time.perf_counter() - t0
        out["pandas"] = {"wall_s": wall, "rows_per_s": len(df) / wall}
        for r in runs:
            r["equal_to_pandas"] = bool(np.array_equal(r.pop("_filled").to_numpy(), ref.to_numpy()))
    base = runs[0]["rows_per_s"] if runs else None
    for r in runs:
        r["speedup"] = r["rows_per_s"] / base
        r["efficiency"] = r["speedup"] * runs[0]["workers"] / r["workers"]
    print(json.dumps(out, indent=1, default=str))
    rows = [(r["workers"], r["partitions"], r["wall_s"], r["rows_per_s"], r["speedup"], r["efficiency"], r["mae"],
             r.get("equal_to_pandas"), f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}") for r in runs]
    print(markdown_table(["workers", "partitions", "wall (s)", "rows/s", "speed-up", "efficiency", "MAE",
                          "equal to pandas", "load 1 min before / after"], rows,
                         ["%d", "%d", "%.1f", "%.0f", "%.2f", "%.2f", "%.3f", None, None]))
    print(f"\n{a.rows} x {COLS}, {a.nan:.0%} NaN; n_samples={a.n_samples}, {imputer.sampler}-{imputer.sampler_steps}; "
          f"interpolation MAE {out['interpolation_mae']:.3f}; {out['date']}")
    path = Path(a.out or f"benchmarks/out/impute_dask_{a.rows}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out, indent=1, default=str)
    return out


if __name__ == "__main__":
    main()
