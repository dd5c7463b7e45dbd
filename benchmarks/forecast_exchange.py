"""Same-budget forecasting benchmark on exchange_rate (TimeGrad protocol: horizon 30, last 5
rolling windows); ``forecast_etth1.py`` runs it on ETTh1 (horizon 24, last 7 windows).

Every trained model gets the same wall-clock training budget (``--budget`` seconds, one torch
thread each, one model at a time) and is scored on the same test windows with the same number
of sample paths: TimeGrad (100-step ancestral sampler and fast samplers), CSDI forecasting
(50-step and <= 10-step samplers), GluonTS' torch DeepAR, and seasonal naive. Metrics as GluonTS'
``MultivariateEvaluator``: CRPS-sum, CRPS, ND, NRMSE-sum; plus training and sampling seconds.

Rows are written to ``--out`` as they finish; a rerun skips the models already there (resume after an
interruption), ``--rerun`` recomputes them.

    python benchmarks/forecast_exchange.py --budget 600 --out benchmarks/out/forecast_exchange.json
    python benchmarks/forecast_exchange.py --models deepar seasonal_naive --budget 60 --out runs/x.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

from multidiff.cli.common import add_option
from multidiff.core.checkpoint import write_json_atomic
from multidiff.datasets.gluonts_adapters import load_benchmark, to_univariate
from multidiff.metrics.forecasting import forecast_metrics
from multidiff.tasks.forecasting import TimeGradEstimator, evaluate

MODELS = ("seasonal_naive", "deepar", "timegrad", "csdi")


def seasonal_naive(test, horizon: int, freq: str) -> dict:
    """Repeat the last season before each window (GluonTS' seasonality for ``freq``)."""
    from gluonts.time_feature import get_seasonality

    season = get_seasonality(freq)
    targets, preds = [], []
    for entry in test:
        y = np.asarray(entry["target"], dtype=np.float64).T  # (T, D)
        past, future = y[:-horizon], y[-horizon:]
        preds.append(past[len(past) - season + np.arange(horizon) % season])
        targets.append(future)
    return {f"seasonal naive (season {season})": forecast_metrics(np.stack(preds)[:, None], np.stack(targets))}


def deepar(train, test, horizon: int, freq: str, budget: float, samples: int, seed: int, epochs: int = None) -> dict:
    """GluonTS' torch DeepAR with its defaults, one univariate model over all series, trained for
    ``budget`` seconds (Lightning's ``max_time``) or at most ``epochs`` epochs of 50 batches."""
    import lightning.pytorch as pl
    from gluonts.evaluation import make_evaluation_predictions
    from gluonts.torch.model.deepar import DeepAREstimator

    pl.seed_everything(seed, verbose=False)
    dim = np.asarray(next(iter(test))["target"]).shape[0]
    with tempfile.TemporaryDirectory() as tmp:  # Lightning's checkpoint folder
        est = DeepAREstimator(freq=freq, prediction_length=horizon,
                              trainer_kwargs={"max_epochs": epochs or 10**6, "max_time": {"seconds": budget},
                                              "logger": False,
                                              "enable_progress_bar": False, "enable_model_summary": False,
                                              "default_root_dir": tmp})
        t0 = time.perf_counter()
        predictor = est.train(to_univariate(train))
        train_s = time.perf_counter() - t0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fc_it, ts_it = make_evaluation_predictions(to_univariate(test), predictor, num_samples=samples)
        t0 = time.perf_counter()
        fcs = list(fc_it)
        sample_s = time.perf_counter() - t0
    s = np.stack([f.samples for f in fcs])                       # (N * D, S, H)
    y = np.stack([np.asarray(ts).ravel()[-horizon:] for ts in ts_it])
    s = s.reshape(-1, dim, samples, horizon).transpose(0, 2, 3, 1)
    y = y.reshape(-1, dim, horizon).transpose(0, 2, 1)
    return {"DeepAR (GluonTS torch)": {**forecast_metrics(s, y), "train_seconds": train_s, "sampling_seconds": sample_s}}


def _sampled(name: str, predictor, runs, test, samples: int, seed: int, train_s: float, save: str = None) -> dict:
    if save:
        predictor.serialize(os.path.join(save, name.lower()))
    rows = {}
    for sampler, steps, label in runs:
        predictor.set_sampler(sampler, steps)
        rows[f"{name} {label}"] = {**evaluate(predictor, test, num_samples=samples, seed=seed), "train_seconds": train_s}
        print(f"row: {name} {label} {json.dumps(rows[f'{name} {label}'])}", flush=True)
    return rows


def timegrad(train, test, df, horizon: int, freq: str, budget: float, samples: int, seed: int, fast_steps,
             save=None, epochs: int = None) -> dict:
    """TimeGrad with its paper architecture, trained for ``budget`` seconds (or at most ``epochs``
    epochs of 100 batches, whichever ends first)."""
    est = TimeGradEstimator(freq=freq, prediction_length=horizon, target_dim=df.shape[1],
                            max_epochs=epochs or 10**6, batch_size=32, seed=seed,
                            trainer_kwargs={"max_time": {"seconds": budget}})
    t0 = time.perf_counter()
    predictor = est.train(train)
    train_s = time.perf_counter() - t0
    runs = [("ddpm", None, "ddpm 100 steps")] + [(s, n, f"{s} {n} steps") for n in fast_steps
                                                 for s in ("ddim", "dpm_solver")]
    return _sampled("TimeGrad", predictor, runs, test, samples, seed, train_s, save)


def csdi(train, test, df, horizon: int, freq: str, budget: float, samples: int, seed: int, fast_steps,
         save=None, skip_ddpm: bool = False, **kwargs) -> dict:
    """CSDI forecasting (imputing the horizon) trained for ``budget`` seconds; ``kwargs`` go to
    the estimator (e.g. ``context_length``)."""
    from multidiff.tasks.forecasting import CSDIForecastEstimator

    est = CSDIForecastEstimator(freq=freq, prediction_length=horizon, target_dim=df.shape[1], max_time=budget,
                                seed=seed, **kwargs)
    t0 = time.perf_counter()
    predictor = est.train(train)
    train_s = time.perf_counter() - t0
    runs = ([] if skip_ddpm else [("ddpm", None, "ddpm 50 steps")]) + [(s, n, f"{s} {n} steps") for n in fast_steps
                                                                       for s in ("ddim", "dpm_solver")]
    label = "CSDI" + "".join(f" {k}={v}" for k, v in kwargs.items())
    return _sampled(label, predictor, runs, test, samples, seed, train_s, save)


def report(results: dict) -> str:
    """The rows of ``results`` (as written to ``--out``) as one Markdown table, in the order measured."""
    from multidiff.metrics.tables import markdown_table

    rows = []
    for key, model in results["models"].items():
        tag = key.split(":", 1)[1] if ":" in key else ""
        for name, row in model["rows"].items():
            rows.append([f"{name} [{tag}]" if tag and tag.replace("=", "") not in name.replace("=", "") else name, model["budget_seconds"] if key != "seasonal_naive" else None, row["CRPS-sum"],
                         row["CRPS"], row["ND"], row["NRMSE-sum"], row.get("train_seconds"),
                         row.get("sampling_seconds"), f"{model['load_before']:.1f}-{model['load_after']:.1f}"])
    return markdown_table(["model / sampler", "budget s", "CRPS-sum", "CRPS", "ND", "NRMSE-sum", "train s",
                           "sampling s", "load"], rows,
                          [None, "%.0f", "%.4f", "%.4f", "%.4f", "%.4f", "%.0f", "%.1f", None])


def main(dataset: str = "exchange_rate", argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=600, help="training seconds per model (default 600)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--samples", type=int, default=100, help="sample paths per forecast (default 100)")
    add_option(p, "--sampler-steps", old=["--fast-steps"], type=int, nargs="+", default=[10],
               help="step counts of the fast samplers (ddim, dpm_solver); ddpm takes every step (unless --skip-ddpm)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON file; rows already in it are kept and not recomputed")
    p.add_argument("--rerun", action="store_true", help="recompute the models already in --out")
    p.add_argument("--report", action="store_true", help="print --out as a Markdown table and stop")
    p.add_argument("--tag", default="", help="stored as MODEL:TAG in --out (e.g. a learning-curve point)")
    p.add_argument("--csdi-context", type=int, default=None, help="CSDI context_length (default 4 x horizon)")
    p.add_argument("--csdi-season", type=int, default=None, help="CSDI season of the naive base (default 1)")
    p.add_argument("--csdi-time-features", choices=("on", "off"), default=None,
                   help="CSDI: calendar features as side information (default: the estimator's)")
    p.add_argument("--timegrad-epochs", type=int, default=None,
                   help="TimeGrad: stop after this many epochs of 100 batches if the budget lasts longer")
    p.add_argument("--deepar-epochs", type=int, default=None,
                   help="DeepAR: stop after this many epochs (GluonTS default: 50 batches each) if the budget lasts longer")
    p.add_argument("--skip-ddpm", action="store_true", help="CSDI: only the fast samplers")
    p.add_argument("--save-models", help="also save the trained diffusion predictors in this folder (timegrad/, csdi/)")
    args = p.parse_args(argv)
    results = {"dataset": dataset, "models": {}}
    if os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f)
    if args.report:
        print(report(results))
        return results
    torch.set_num_threads(args.threads)
    df, train, test, freq, horizon = load_benchmark(dataset)
    for model in args.models:
        key = f"{model}:{args.tag}" if args.tag else model
        if key in results["models"] and not args.rerun:
            print(f"{key}: already in {args.out}, skipped (--rerun recomputes)", flush=True)
            continue
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        if model == "seasonal_naive":
            rows = seasonal_naive(test, horizon, freq)
        elif model == "deepar":
            rows = deepar(train, test, horizon, freq, args.budget, args.samples, args.seed, args.deepar_epochs)
        elif model == "timegrad":
            rows = timegrad(train, test, df, horizon, freq, args.budget, args.samples, args.seed, args.sampler_steps,
                            args.save_models, args.timegrad_epochs)
        else:
            extra = {"context_length": args.csdi_context} if args.csdi_context else {}
            if args.csdi_season:
                extra["season"] = args.csdi_season
            if args.csdi_time_features:
                extra["time_features"] = args.csdi_time_features == "on"
            rows = csdi(train, test, df, horizon, freq, args.budget, args.samples, args.seed, args.sampler_steps,
                        args.save_models, args.skip_ddpm, **extra)
        results["models"][key] = {"rows": rows, "budget_seconds": args.budget, "argv": argv or sys.argv[1:], "samples": args.samples,
                                    "threads": args.threads, "seed": args.seed,
                                    "wall_seconds": time.perf_counter() - t0,
                                    "load_before": load, "load_after": os.getloadavg()[0],
                                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        for name, row in rows.items():
            print(f"row: {name} {json.dumps(row)}", flush=True)
        write_json_atomic(args.out, results)
    return results


if __name__ == "__main__":
    main("exchange_rate")
