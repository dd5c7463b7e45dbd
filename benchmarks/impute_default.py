"""`multidiff.tasks.impute(df)` with defaults, as a new user calls it, against linear interpolation.

The frame: the first ROWS hours of the first COLS stations of AQI-36's ``pm25_ground.txt`` (its
real gaps stay NaN), with 10 % of the observed entries hidden at random (seed 0). Reports the wall
time of the whole call (training, self-check and sampling), the peak memory, the MAE on the hidden
entries next to ``df.interpolate(limit_direction="both")``, and the imputer's self-check.

    python benchmarks/impute_default.py                      # 2000 x 10, issue 9 point 1
    python benchmarks/impute_default.py --rows 500 --cols 36
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import multidiff
from multidiff.core.io import write_json_atomic
from multidiff.core.provenance import Run
from multidiff.datasets.fetch import locate


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--cols", type=int, default=10)
    p.add_argument("--hide", type=float, default=0.1)
    p.add_argument("--data", default=None)
    p.add_argument("--out", default="benchmarks/out/impute_default.json")
    a = p.parse_args(argv)
    folder = locate("aqi36", a.data)
    ground = pd.read_csv(folder / "pm25_ground.txt", index_col="datetime", parse_dates=True).iloc[:a.rows, :a.cols]
    rng = np.random.default_rng(0)
    hidden = ground.notna().to_numpy() & (rng.random(ground.shape) < a.hide)
    df = ground.mask(hidden)
    run = Run()
    t0 = time.time()
    res = multidiff.tasks.impute(df, return_result=True, return_samples=False)
    wall = time.time() - t0
    truth = ground.to_numpy()[hidden]
    mae = float(np.abs(res.filled.to_numpy()[hidden] - truth).mean())
    lin = df.interpolate(limit_direction="both").to_numpy()[hidden]
    lin_mae = float(np.abs(lin - truth).mean())
    out = {"frame": f"AQI-36 pm25_ground first {a.rows} rows x {a.cols} stations, {a.hide:.0%} of observed hidden",
           "hidden_entries": int(hidden.sum()), "wall_s": wall, "MAE": mae, "interpolation_MAE": lin_mae,
           "check": res.check, **run.provenance()}
    print(json.dumps(out, indent=1, default=str))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(a.out, out, indent=1, default=str)
    return out


if __name__ == "__main__":
    main()
