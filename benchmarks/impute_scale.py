"""How `multidiff.tasks.impute(df)` with defaults scales on one machine: wall time and peak memory
for a wide frame (many columns) and a long one (many rows).

The frames are built from AQI-36's real PM2.5 series (`pm25_ground.txt`, its gaps kept): the
wide one places station columns side by side, shifted in time, until it has COLS columns; the
long one stacks the year of the first stations end to end until it has ROWS rows. 10 % of the
observed entries are hidden at random (seed 0). Run one shape per process so that the peak
memory is that shape's:

    python benchmarks/impute_scale.py --rows 500 --cols 200
    python benchmarks/impute_scale.py --rows 100000 --cols 10
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


def frame(rows: int, cols: int, data=None) -> pd.DataFrame:
    ground = pd.read_csv(locate("aqi36", data) / "pm25_ground.txt", index_col="datetime").to_numpy()
    blocks, shift = [], 0
    while sum(b.shape[1] for b in blocks) < cols:  # wide: stations side by side, shifted by a week each time
        blocks.append(np.roll(ground, shift, axis=0))
        shift += 24 * 7
    wide = np.concatenate(blocks, axis=1)[:, :cols]
    reps = -(-rows // len(wide))
    return pd.DataFrame(np.concatenate([wide] * reps)[:rows], columns=[f"s{j}" for j in range(cols)])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--cols", type=int, required=True)
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    truth = frame(a.rows, a.cols, a.data)
    rng = np.random.default_rng(0)
    hidden = truth.notna().to_numpy() & (rng.random(truth.shape) < 0.1)
    df = truth.mask(hidden)
    run, t0 = Run(), time.time()
    res = multidiff.tasks.impute(df, return_result=True, return_samples=False)
    wall = time.time() - t0
    mae = float(np.abs(res.filled.to_numpy()[hidden] - truth.to_numpy()[hidden]).mean())
    lin = float(np.abs(df.interpolate(limit_direction="both").to_numpy()[hidden] - truth.to_numpy()[hidden]).mean())
    out = {"shape": [a.rows, a.cols], "wall_s": wall, "MAE": mae, "interpolation_MAE": lin, "check": res.check,
           **run.provenance()}
    print(json.dumps(out, indent=1, default=str))
    path = Path(a.out or f"benchmarks/out/impute_scale_{a.rows}x{a.cols}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out, indent=1, default=str)
    return out


if __name__ == "__main__":
    main()
