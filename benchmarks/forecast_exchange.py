"""Same-budget forecasting benchmark on exchange_rate (TimeGrad protocol: horizon 30, last 5
rolling windows); ``forecast_etth1.py`` runs it on ETTh1 (horizon 24, last 7 windows).

The fair protocol (issue 32): every trained model (TimeGrad, CSDI forecasting, GluonTS' torch
DeepAR) gets the same wall-clock budget (``--budget`` seconds, validation included, one torch
thread each, one model at a time) and the same validation windows: the last ``--val-windows``
horizon-sized windows before the test range (default: as many as there are test windows), cut off
its training data. Each keeps the weights of its epoch with the lowest loss on them (DeepAR: its
negative log-likelihood, GluonTS' ``ModelCheckpoint`` on ``val_loss``; TimeGrad and CSDI: their
denoising loss with the same noise every epoch). ``--no-validation`` is the protocol of the older
tables: all data before the test range, the lowest *training*-loss epoch kept (GluonTS' rule
without validation data), which lets long runs overfit. Beside them, the peers of
``multidiff.tasks.forecasting.peers``: seasonal naive and the linear peer (a ridge per series on its
last ``--linear-lags`` values, DLinear-style), fitted on each test window's whole history.

All are scored on the same test windows with the same number of sample paths: TimeGrad
(100-step ancestral sampler and fast samplers), CSDI (50-step and <= 10-step samplers). Metrics as
GluonTS' ``MultivariateEvaluator``: CRPS-sum, CRPS, ND, NRMSE-sum; plus training and sampling seconds.

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
import time

import torch

from multidiff.core.io import write_json_atomic
from multidiff.core.provenance import Run
from multidiff.datasets.gluonts_adapters import load_benchmark, validation_split
from multidiff.metrics.forecasting import forecast_metrics
from multidiff.tasks.forecasting import TimeGradEstimator, evaluate, evaluate_peer, peers

MODELS = ("seasonal_naive", "linear", "csdi_zero_shot", "deepar", "timegrad", "csdi")
PEERS = ("seasonal_naive", "linear", "csdi_zero_shot")  # no budget, no validation


def seasonal_naive(test, horizon: int, freq: str) -> dict:
    """Repeat the last season before each window (GluonTS' seasonality for ``freq``)."""
    from gluonts.time_feature import get_seasonality

    season = get_seasonality(freq)
    return _scored(f"seasonal naive (season {season})", lambda past: peers.seasonal_naive(past, horizon, season),
                   test, horizon)


def linear(test, horizon: int, samples: int, seed: int, lags: int = 168) -> dict:
    """The linear peer (DLinear-style ridge per series on its last ``lags`` values, Gaussian spread
    from its training residuals), fitted on each test window's whole history; "train s" is the
    time of all fits and forecasts."""
    return _scored(f"linear peer (ridge, {lags} lags)",
                   lambda past: peers.linear_forecast(past, horizon, lags=lags, n_samples=samples, seed=seed),
                   test, horizon)


def _scored(name: str, forecaster, test, horizon: int) -> dict:
    row = evaluate_peer(forecaster, test, horizon)
    return {name: {**row, "train_seconds": row.pop("seconds")}}


def deepar(train, test, horizon: int, freq: str, budget: float, samples: int, seed: int, epochs: int = None,
           validation=None) -> dict:
    """``peers.deepar`` (GluonTS' torch DeepAR) trained for ``budget`` seconds, scored."""
    out = peers.deepar(train, test, horizon, freq, budget, samples, seed, epochs, validation)
    return {"DeepAR (GluonTS torch)": {**forecast_metrics(out["samples"], out["targets"]),
                                       "train_seconds": out["train_seconds"],
                                       "sampling_seconds": out["sampling_seconds"]}}


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
             save=None, epochs: int = None, validation=None) -> dict:
    """TimeGrad with its paper architecture, trained for ``budget`` seconds (or at most ``epochs``
    epochs of 100 batches, whichever ends first), keeping its best epoch on ``validation``."""
    est = TimeGradEstimator(freq=freq, prediction_length=horizon, target_dim=df.shape[1],
                            epochs=epochs or 10**6, max_time=budget, batch_size=32, seed=seed)
    t0 = time.perf_counter()
    predictor = est.train(train, validation_data=validation)
    train_s = time.perf_counter() - t0
    runs = [("ddpm", None, "ddpm 100 steps")] + [(s, n, f"{s} {n} steps") for n in fast_steps
                                                 for s in ("ddim", "dpm_solver")]
    return _sampled("TimeGrad", predictor, runs, test, samples, seed, train_s, save)


def csdi(train, test, df, horizon: int, freq: str, budget: float, samples: int, seed: int, fast_steps,
         save=None, skip_ddpm: bool = False, validation=None, **kwargs) -> dict:
    """CSDI forecasting (imputing the horizon) trained for ``budget`` seconds, keeping its best
    weights on ``validation``; ``kwargs`` go to the estimator (e.g. ``context_length``)."""
    from multidiff.tasks.forecasting import CSDIForecastEstimator

    est = CSDIForecastEstimator(freq=freq, prediction_length=horizon, target_dim=df.shape[1], max_time=budget,
                                seed=seed, **kwargs)
    t0 = time.perf_counter()
    predictor = est.train(train, validation_data=validation)
    train_s = time.perf_counter() - t0
    runs = ([] if skip_ddpm else [("ddpm", None, "ddpm 50 steps")]) + [(s, n, f"{s} {n} steps") for n in fast_steps
                                                                       for s in ("ddim", "dpm_solver")]
    label = "CSDI" + "".join(f" {k}={v}" for k, v in kwargs.items())
    return _sampled(label, predictor, runs, test, samples, seed, train_s, save)


def csdi_zero_shot(train, test, df, horizon: int, freq: str, samples: int, seed: int, **kwargs) -> dict:
    """CSDI forecasting with ``max_time=0``: no training step; the linear base fitted in closed form
    on all the data before the test range, its leave-one-out residual windows resampled as the spread."""
    from multidiff.tasks.forecasting import CSDIForecastEstimator

    est = CSDIForecastEstimator(freq=freq, prediction_length=horizon, target_dim=df.shape[1], max_time=0,
                                seed=seed, **kwargs)
    t0 = time.perf_counter()
    predictor = est.train(train)
    return _sampled("CSDI zero-shot", predictor, [("dpm_solver", 10, "(linear base + residual windows)")], test,
                    samples, seed, time.perf_counter() - t0)


PROTOCOL = ("Protocol (issue 32): the test windows are the last {test} rolling windows of {horizon} steps. Every "
            "trained model (DeepAR, TimeGrad, CSDI) trains for the same wall-clock budget (validation included) on "
            "the data before the horizon-sized validation windows that precede the test range, and keeps the "
            "weights of its epoch with the lowest loss on them (column \"selected by\"; \"train loss\": the older "
            "protocol without validation data, which keeps the lowest training-loss epoch). Seasonal naive and the "
            "linear peer are fitted on each test window's whole history.")


def _selected_by(key: str, model: dict) -> str:
    if key.split(":", 1)[0] in PEERS:
        return None
    k = model.get("validation_windows")  # absent from the rows of the older protocol
    return f"val loss, {k} windows" if k else "train loss"


def _load(value) -> float:
    """The 1-minute load average of a row: the first of ``Run``'s three (rows before it hold one)."""
    return value[0] if isinstance(value, list) else value


def report(results: dict) -> str:
    """The protocol and the rows of ``results`` (as written to ``--out``) as one Markdown table,
    in the order measured."""
    from multidiff.metrics.tables import markdown_table

    rows = []
    for key, model in results["models"].items():
        tag = key.split(":", 1)[1] if ":" in key else ""
        peer = key.split(":", 1)[0] in PEERS
        for name, row in model["rows"].items():
            rows.append([f"{name} [{tag}]" if tag and tag.replace("=", "") not in name.replace("=", "") else name,
                         None if peer else model["budget_seconds"], _selected_by(key, model), row["CRPS-sum"],
                         row["CRPS"], row["ND"], row["NRMSE-sum"], row.get("train_seconds"),
                         row.get("sampling_seconds"),
                         f"{_load(model['load_before']):.1f}-{_load(model['load_after']):.1f}"])
    table = markdown_table(["model / sampler", "budget s", "selected by", "CRPS-sum", "CRPS", "ND", "NRMSE-sum",
                            "train s", "sampling s", "load"], rows,
                           [None, "%.0f", None, "%.4f", "%.4f", "%.4f", "%.4f", "%.0f", "%.1f", None])
    if "test_windows" not in results:  # written before the protocol was recorded
        return table
    return PROTOCOL.format(test=results["test_windows"], horizon=results["horizon"]) + "\n\n" + table


def main(dataset: str = "exchange_rate", argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=600, help="training seconds per model (default 600)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--samples", type=int, default=100, help="sample paths per forecast (default 100)")
    p.add_argument("--sampler-steps", type=int, nargs="+", default=[10],
                   help="step counts of the fast samplers (ddim, dpm_solver); ddpm takes every step (unless --skip-ddpm)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON file; rows already in it are kept and not recomputed")
    p.add_argument("--rerun", action="store_true", help="recompute the models already in --out")
    p.add_argument("--report", action="store_true", help="print --out as a Markdown table and stop")
    p.add_argument("--tag", default="", help="stored as MODEL:TAG in --out (e.g. a learning-curve point)")
    p.add_argument("--csdi-context", type=int, default=None, help="CSDI context_length (default 4 x horizon)")
    p.add_argument("--csdi-season", type=int, default=None, help="CSDI season of the naive base (default 1)")
    p.add_argument("--csdi-base", choices=("linear", "naive"), default=None,
                   help="CSDI: the base forecast the diffusion runs around (default: the estimator's)")
    p.add_argument("--csdi-time-features", choices=("on", "off"), default=None,
                   help="CSDI: calendar features as side information (default: the estimator's)")
    p.add_argument("--timegrad-epochs", type=int, default=None,
                   help="TimeGrad: stop after this many epochs of 100 batches if the budget lasts longer")
    p.add_argument("--deepar-epochs", type=int, default=None,
                   help="DeepAR: stop after this many epochs (GluonTS default: 50 batches each) if the budget lasts longer")
    p.add_argument("--skip-ddpm", action="store_true", help="CSDI: only the fast samplers")
    p.add_argument("--val-windows", type=int, default=None,
                   help="validation windows (of the horizon) before the test range for the trained models "
                        "(default: as many as the test windows)")
    p.add_argument("--no-validation", action="store_true",
                   help="the older protocol: train on all data before the test range and keep the epoch with the "
                        "lowest training loss (reproduces the tables before issue 32)")
    p.add_argument("--linear-lags", type=int, default=168, help="linear peer: past values per series (default 168)")
    p.add_argument("--save-models", help="also save the trained diffusion predictors in this folder (timegrad/, csdi/)")
    args = p.parse_args(argv)
    if args.val_windows is not None and (args.val_windows < 1 or args.no_validation):
        p.error("--val-windows takes a number >= 1 and cannot go with --no-validation")
    results = {"dataset": dataset, "models": {}}
    if os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f)
    if args.report:
        print(report(results))
        return results
    torch.set_num_threads(args.threads)
    df, train, test, freq, horizon = load_benchmark(dataset)
    n_val = 0 if args.no_validation else args.val_windows or len(test)
    fit_data, validation = validation_split(train, horizon, n_val) if n_val else (train, None)
    results.update(horizon=horizon, test_windows=len(test))
    for model in args.models:
        key = f"{model}:{args.tag}" if args.tag else model
        if key in results["models"] and not args.rerun:
            print(f"{key}: already in {args.out}, skipped (--rerun recomputes)", flush=True)
            continue
        run = Run(None if argv is None else [sys.argv[0], *argv])
        t0 = time.perf_counter()
        if model == "seasonal_naive":
            rows = seasonal_naive(test, horizon, freq)
        elif model == "linear":
            rows = linear(test, horizon, args.samples, args.seed, args.linear_lags)
        elif model == "deepar":
            rows = deepar(fit_data, test, horizon, freq, args.budget, args.samples, args.seed, args.deepar_epochs,
                          validation)
        elif model == "timegrad":
            rows = timegrad(fit_data, test, df, horizon, freq, args.budget, args.samples, args.seed,
                            args.sampler_steps, args.save_models, args.timegrad_epochs, validation)
        else:
            extra = {"context_length": args.csdi_context} if args.csdi_context else {}
            if args.csdi_season:
                extra["season"] = args.csdi_season
            if args.csdi_time_features:
                extra["time_features"] = args.csdi_time_features == "on"
            if args.csdi_base:
                extra["base"] = args.csdi_base
        if model == "csdi_zero_shot":
            rows = csdi_zero_shot(train, test, df, horizon, freq, args.samples, args.seed, **extra)
        elif model == "csdi":
            rows = csdi(fit_data, test, df, horizon, freq, args.budget, args.samples, args.seed,
                        args.sampler_steps, args.save_models, args.skip_ddpm, validation, **extra)
        results["models"][key] = {"rows": rows, "budget_seconds": args.budget, "samples": args.samples,
                                  "validation_windows": None if model in PEERS else n_val, "seed": args.seed,
                                  "wall_seconds": time.perf_counter() - t0, **run.provenance()}
        for name, row in rows.items():
            print(f"row: {name} {json.dumps(row)}", flush=True)
        write_json_atomic(args.out, results)
    return results


if __name__ == "__main__":
    main("exchange_rate")
