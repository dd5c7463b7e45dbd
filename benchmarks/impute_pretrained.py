"""The pretrained imputer on real frames, beside what a user would use instead (issue 31).

10 % of the observed entries of each frame are hidden (seeded); every method fills the same
frame in the same run and is scored on those entries: linear interpolation, PCHIP, the
regression peer (multidiff.tasks.imputation.regression), scikit-learn's KNN and Iterative
imputers, and multidiff (``impute(df, max_time=...)``; the network alone and the blend).

    python benchmarks/impute_pretrained.py --max-time 0                      # zero-shot table
    python benchmarks/impute_pretrained.py --max-time 120                    # the defaults
    python benchmarks/impute_pretrained.py --max-time 0 --frames aqi36-10 \\
        --networks runs/impute_pretrain/min0 runs/impute_pretrain/min30 ...  # the learning curve

Frames: AQI-36 first 2000 rows x 10 stations (seeds 0, 1, 2, 42; PM2.5 is never in pretraining),
AQI-36 rows 2000-4000 x 36, ETTh1 and the exchange rates (last 2000 rows, out of the corpus).
"""
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from multidiff.core.io import write_json_atomic
from multidiff.core.provenance import Run, load_average
from multidiff.datasets.fetch import locate
from multidiff.metrics.tables import markdown_table
from multidiff.tasks.imputation import Imputer
from multidiff.tasks.imputation import peers


def frames(data=None) -> dict:
    """name -> (frame, seed) of the hidden-entry protocol."""
    g = pd.read_csv(locate("aqi36", data) / "pm25_ground.txt", index_col="datetime", parse_dates=True)
    e = pd.read_csv(locate("etth1", data) / "ETTh1.csv", index_col="date", parse_dates=True)
    x = pd.read_csv(locate("exchange_rate", data) / "exchange_rate.txt.gz", header=None).iloc[-2000:]
    x.index = pd.date_range("2000-01-01", periods=len(x), freq="D")
    x.columns = [f"rate{i}" for i in range(x.shape[1])]
    out = {f"aqi36-10 seed {s}": (g.iloc[:2000, :10], s) for s in (0, 1, 2, 42)}
    out["aqi36-36 rows 2000-4000"] = (g.iloc[2000:4000], 0)
    out["ETTh1 last 2000"] = (e.iloc[-2000:], 42)
    out["exchange last 2000"] = (x, 0)
    return out


def peer_rows(inp: pd.DataFrame) -> dict:
    """name -> (filled array, seconds) for every peer."""
    a = inp.to_numpy(float)
    out = {}
    for name, run in (("linear interpolation", peers.interpolation), ("regression", peers.regression),
                      ("sklearn KNNImputer", peers.knn), ("sklearn IterativeImputer", peers.iterative)):
        t = time.time()
        out[name] = (run([a], [a])[0][0], time.time() - t)
    t = time.time()
    out["PCHIP"] = (inp.interpolate(method="pchip", limit_direction="both").bfill().ffill().to_numpy(), time.time() - t)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-time", type=float, default=0.0, help="fine-tuning seconds (0: zero-shot)")
    p.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: the Imputer's)")
    p.add_argument("--networks", nargs="*", default=["default"], help="pretrained folders ('default': the shipped one)")
    p.add_argument("--frames", nargs="*", default=None, help="name prefixes of the frames to run (default: all)")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default="benchmarks/out/impute_pretrained.json")
    a = p.parse_args(argv)
    run = Run()
    warnings.simplefilter("ignore")
    results = []
    for name, (df, seed) in frames(a.data).items():
        if a.frames and not any(name.startswith(f) for f in a.frames):
            continue
        rng = np.random.default_rng(seed)
        hide = df.notna().to_numpy() & (rng.random(df.shape) < 0.10)
        inp, truth = df.mask(hide), df.to_numpy()[hide]
        mae = lambda arr: float(np.abs(np.asarray(arr)[hide] - truth).mean())  # noqa: E731
        row = {"frame": name, "shape": list(df.shape), "hidden": int(hide.sum()), "load_before": load_average()[0]}
        for peer, (filled, secs) in peer_rows(inp).items():
            row[peer] = {"MAE": mae(filled), "s": secs}
        for net in a.networks:
            t = time.time()
            extra = {} if a.lr is None else {"lr": a.lr}
            imp = Imputer(pretrained=net, max_time=a.max_time or 0, progress=False, **extra).fit(inp)
            point, samples = imp.impute_array(inp.to_numpy(float), imp.n_samples)
            secs = time.time() - t
            alone = np.tile([0.0, 0.0, 1.0], (df.shape[1], 1))
            blend, imp.blend_weights_ = imp.blend_weights_, alone
            net_point = imp.impute_array(inp.to_numpy(float), 1)[0]
            imp.blend_weights_ = blend
            lo, hi = np.quantile(samples, [0.05, 0.95], axis=0)
            row[f"multidiff {net}"] = {"MAE": mae(point), "network alone MAE": mae(net_point), "s": secs,
                                       "90% band coverage": float(((truth >= lo[hide]) & (truth <= hi[hide])).mean()),
                                       "fine-tune steps": imp.train_result_.optimizer_steps, "check": imp.check_}
        row["load_after"] = load_average()[0]
        results.append(row)
        lin = row["linear interpolation"]["MAE"]
        print(name, {k: round(v["MAE"] / lin, 3) for k, v in row.items() if isinstance(v, dict)},
              {k: round(v.get("network alone MAE", np.nan) / lin, 3) for k, v in row.items()
               if isinstance(v, dict) and "network alone MAE" in v}, flush=True)
    out = {**run.provenance(), "max_time": a.max_time, "lr": a.lr, "rows": results}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(a.out, out, indent=1, default=str)
    print(table(out))


def table(out: dict) -> str:
    """Markdown: MAE / linear interpolation's per frame and method (seconds for multidiff)."""
    rows, methods = out["rows"], []
    for r in rows:
        methods += [k for k, v in r.items() if isinstance(v, dict) and k not in methods]
    body = []
    for r in rows:
        lin = r["linear interpolation"]["MAE"]
        cells = [r["frame"], f"{lin:.4g}"]
        for m in methods:
            v = r.get(m)
            if v is None:
                cells.append("")
            elif "network alone MAE" in v:
                cells.append(f"{v['MAE'] / lin:.3f} (net {v['network alone MAE'] / lin:.3f}, {v['s']:.0f} s)")
            else:
                cells.append(f"{v['MAE'] / lin:.3f}")
        body.append(cells)
    return markdown_table(["frame", "interp MAE"] + methods, body, [None] * (2 + len(methods)))


if __name__ == "__main__":
    main()
