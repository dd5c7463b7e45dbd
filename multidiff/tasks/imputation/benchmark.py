"""CSDI's benchmark protocols (Tashiro et al. 2021, Tables 2-3) for AQI-36 and PhysioNet 2012,
with the mean and linear-interpolation baselines on the same evaluation entries."""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ...datasets.aqi36 import load_aqi36
from ...datasets.physionet import csdi_split, eval_mask, load_physionet
from ...metrics.imputation import crps_quantile, masked_mae, masked_rmse
from .imputer import Imputer

__all__ = ["run_aqi36", "run_physionet", "format_table", "main"]

# sampler settings compared by default: CSDI's 50-step ancestral sampler and fast ones
DEFAULT_SAMPLERS = (("ddpm", 50), ("dpm_solver", 5), ("ddim", 5))


def _interpolate(values: np.ndarray) -> np.ndarray:
    """Linear interpolation along time per column; edges take the nearest value."""
    out = pd.DataFrame(values).interpolate(method="linear", limit_direction="both").to_numpy()
    return out


def _score(samples, target, mask) -> dict:
    return {"MAE": masked_mae(np.median(samples, 0), target, mask), "RMSE": masked_rmse(np.median(samples, 0), target, mask),
            "CRPS": crps_quantile(samples, target, mask)}


def _evaluate(imp: Imputer, inputs: Sequence[np.ndarray], targets, masks, n_samples, samplers, transform=None,
              nfe_reference: int = 50, keep: Optional[dict] = None) -> list[dict]:
    rows = []
    tr = transform or (lambda a: a)
    target = np.concatenate([tr(t) for t in targets])
    mask = np.concatenate(masks)
    for name, steps in samplers:
        imp.sampler, imp.sampler_steps = name, steps
        t0 = time.perf_counter()
        samples = np.concatenate([tr(imp.sample_array(x, n_samples)) for x in inputs], axis=1)
        secs = time.perf_counter() - t0
        if keep is not None:
            keep[f"{name}-{steps}"] = samples
        row = {"method": f"CSDI {name}-{steps}", "NFE": steps, "NFE %": 100.0 * steps / nfe_reference,
               "sample_s": secs, **_score(samples, target, mask)}
        rows.append(row)
    means = np.broadcast_to(tr(imp.mean_[None]), target.shape)
    rows.append({"method": "mean", "MAE": masked_mae(means, target, mask), "RMSE": masked_rmse(means, target, mask)})
    lin = np.concatenate([tr(_interpolate(x)) for x in inputs])
    lin = np.where(np.isnan(lin), means, lin)
    rows.append({"method": "linear interpolation", "MAE": masked_mae(lin, target, mask),
                 "RMSE": masked_rmse(lin, target, mask)})
    return rows


def run_aqi36(path=None, n_samples: int = 100, samplers=DEFAULT_SAMPLERS, valid_month: int = 1,
              test_months: Optional[Sequence[int]] = None, keep_samples: bool = False, **imputer_params) -> dict:
    """Train on the training months (validation month held out), impute the test months from
    ``pm25_missing`` and score the hidden entries in original units (CSDI protocol).
    ``test_months`` narrows the test months (the demo uses March alone); ``keep_samples``
    adds the imputer, the samples and the frames to the result."""
    data = load_aqi36(path)
    train, valid, all_test = data.split(valid_month)
    test_months = tuple(test_months or all_test)
    if not set(test_months) <= set(all_test):
        raise ValueError(f"test_months must be among CSDI's test months {all_test}, got {test_months}")
    params = {"window": 36, "mask_strategy": "mix", **imputer_params}
    imp = Imputer(**params)
    imp.columns_ = list(data.ground.columns)
    t0 = time.perf_counter()
    imp.fit_arrays([f.to_numpy() for f in train], [f.to_numpy() for f in valid])
    train_s = time.perf_counter() - t0
    imp.stride = imp.window  # CSDI evaluates non-overlapping windows, the last one aligned to the month's end
    sel = [data.ground.index.month == m for m in test_months]
    inputs = [data.missing[s].to_numpy() for s in sel]
    targets = [data.ground[s].to_numpy() for s in sel]
    masks = [data.eval_mask[s].to_numpy() for s in sel]
    kept: dict = {}
    rows = _evaluate(imp, inputs, targets, masks, n_samples, samplers, keep=kept if keep_samples else None)
    result = {"dataset": "AQI-36", "train_s": train_s, "steps": imp.train_result_.steps,
              "eval_entries": int(sum(m.sum() for m in masks)), "rows": rows, "params": params}
    if keep_samples:
        index = data.ground.index[np.any(sel, axis=0)]
        result["artifacts"] = {"imputer": imp, "samples": kept, "index": index, "data": data}
    return result


def run_physionet(path=None, missing_ratio: float = 0.1, n_samples: int = 100, samplers=DEFAULT_SAMPLERS,
                  seed: int = 1, limit: Optional[int] = None, **imputer_params) -> dict:
    """CSDI's PhysioNet protocol: hide ``missing_ratio`` of observed values, train on the training
    patients, score the hidden entries of the test patients in normalised units."""
    data = load_physionet(path, limit=limit)
    hidden = eval_mask(data.values, missing_ratio, seed)
    inputs_all = np.where(hidden, np.nan, data.values)
    train, valid, test = csdi_split(len(data.values), seed)
    params = {"window": 48, "train_stride": 48, "mask_strategy": "random", **imputer_params}
    imp = Imputer(**params)
    imp.columns_ = [str(a) for a in range(data.values.shape[2])]
    t0 = time.perf_counter()
    imp.fit_arrays(list(data.values[train]), list(data.values[valid]))  # CSDI trains on all observed values
    train_s = time.perf_counter() - t0
    imp.stride = 48
    normalise = lambda a: (a - imp.mean_) / imp.std_
    rows = _evaluate(imp, list(inputs_all[test]), list(data.values[test]), list(hidden[test]), n_samples, samplers,
                     transform=normalise)
    return {"dataset": f"PhysioNet 2012 ({int(missing_ratio * 100)} % hidden)", "train_s": train_s,
            "steps": imp.train_result_.steps, "eval_entries": int(hidden[test].sum()), "rows": rows,
            "params": params}


def format_table(result: dict) -> str:
    """Markdown table of a benchmark result."""
    lines = [f"### {result['dataset']}: training {result['train_s']:.0f} s ({result['steps']} steps), "
             f"{result['eval_entries']} evaluation entries",
             "", "| method | NFE/step-count | MAE | RMSE | CRPS | sampling s |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        fmt = lambda k, f: (f % r[k]) if k in r else "-"
        lines.append(f"| {r['method']} | {fmt('NFE', '%d')} | {fmt('MAE', '%.4f')} | {fmt('RMSE', '%.4f')} | "
                     f"{fmt('CRPS', '%.4f')} | {fmt('sample_s', '%.1f')} |")
    return "\n".join(lines)


def main(dataset: str, argv=None) -> dict:
    """Command line of ``benchmarks/impute_<dataset>.py``: run the protocol, print the table with
    device, date and command, and write the result as JSON."""
    import argparse
    import json
    import platform
    import sys
    from pathlib import Path

    import torch

    from ...core.checkpoint import write_atomic
    from ...core.device import resolve_device

    p = argparse.ArgumentParser(description=f"CSDI's {dataset} benchmark protocol")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=f"benchmarks/out/impute_{dataset}.json")
    if dataset == "physionet":
        p.add_argument("--missing-ratio", type=float, default=0.1)
        p.add_argument("--limit", type=int, default=None, help="read only the first N records (CPU smoke runs)")
    a = p.parse_args(argv)
    dev = resolve_device(a.device)
    name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads)")
    params = dict(n_samples=a.samples, epochs=a.epochs, max_steps=a.max_steps, batch_size=a.batch_size,
                  channels=a.channels, layers=a.layers, device=a.device, progress=True)
    t0 = time.time()
    if dataset == "physionet":
        res = run_physionet(a.data, missing_ratio=a.missing_ratio, limit=a.limit, **params)
    else:
        res = run_aqi36(a.data, **params)
    res.update(device=name, date=time.strftime("%Y-%m-%d"), command="python " + " ".join(sys.argv),
               wall_s=time.time() - t0)
    print(f"device: {name}  date: {res['date']}  command: {res['command']}")
    print(format_table(res))
    write_atomic(a.out, lambda tmp: Path(tmp).write_text(json.dumps(res, indent=1, default=str)))
    return res
