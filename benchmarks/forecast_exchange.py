"""TimeGrad benchmark on exchange_rate (Rasul et al. 2021 protocol: horizon 30, last 5 rolling windows).

Trains TimeGrad through GluonTS + Lightning, samples with the 100-step ancestral sampler (the
reference) and with DDIM / DPM-Solver++(2M) at few steps, and scores CRPS, CRPS-sum, ND,
NRMSE-sum on the same windows as two baselines: GluonTS' torch DeepAR and seasonal naive.

    python benchmarks/forecast_exchange.py                   # paper-sized model, 20 x 100 batches
    python benchmarks/forecast_exchange.py --epochs 3 --samples 50 --out benchmarks/out/x.json
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from multidiff.core.checkpoint import write_text_atomic
from multidiff.datasets.gluonts_adapters import load_benchmark, to_univariate
from multidiff.metrics.forecasting import forecast_metrics
from multidiff.tasks.forecasting import TimeGradEstimator, evaluate


def seasonal_naive(test, horizon: int, freq: str):
    """Repeat the last season before each window (GluonTS' seasonality for ``freq``)."""
    from gluonts.time_feature import get_seasonality

    season = get_seasonality(freq)
    targets, preds = [], []
    for entry in test:
        y = np.asarray(entry["target"], dtype=np.float64).T  # (T, D)
        past, future = y[:-horizon], y[-horizon:]
        preds.append(past[len(past) - season + np.arange(horizon) % season])
        targets.append(future)
    return forecast_metrics(np.stack(preds)[:, None], np.stack(targets))


def deepar(train, test, horizon: int, freq: str, epochs: int, batches: int, samples: int):
    """GluonTS' torch DeepAR, one univariate model over all series, on the same windows."""
    from gluonts.evaluation import make_evaluation_predictions
    from gluonts.torch.model.deepar import DeepAREstimator

    dim = np.asarray(next(iter(test))["target"]).shape[0]
    with tempfile.TemporaryDirectory() as tmp:  # Lightning's checkpoint folder
        est = DeepAREstimator(freq=freq, prediction_length=horizon, num_batches_per_epoch=batches,
                              trainer_kwargs={"max_epochs": epochs, "logger": False, "enable_progress_bar": False,
                                              "default_root_dir": tmp})
        t0 = time.perf_counter()
        predictor = est.train(to_univariate(train))
    train_s = time.perf_counter() - t0
    fc_it, ts_it = make_evaluation_predictions(to_univariate(test), predictor, num_samples=samples)
    t0 = time.perf_counter()
    fcs = list(fc_it)
    sample_s = time.perf_counter() - t0
    s = np.stack([f.samples for f in fcs])                       # (N * D, S, H)
    y = np.stack([np.asarray(ts).ravel()[-horizon:] for ts in ts_it])
    s = s.reshape(-1, dim, samples, horizon).transpose(0, 2, 3, 1)
    y = y.reshape(-1, dim, horizon).transpose(0, 2, 1)
    return {**forecast_metrics(s, y), "train_seconds": train_s, "sampling_seconds": sample_s}


def main(dataset: str = "exchange_rate", argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batches-per-epoch", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=40)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--fast-steps", type=int, nargs="+", default=[10, 20])
    p.add_argument("--skip-ddpm", action="store_true", help="skip the slow 100-step reference sampler")
    p.add_argument("--deepar-epochs", type=int, default=None, help="default: same as --epochs")
    p.add_argument("--threads", type=int, default=None, help="torch threads (1 is fastest on a shared CPU)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    df, train, test, freq, horizon = load_benchmark(dataset)
    est = TimeGradEstimator(freq=freq, prediction_length=horizon, target_dim=df.shape[1],
                            max_epochs=args.epochs, num_batches_per_epoch=args.batches_per_epoch,
                            batch_size=args.batch_size, hidden_size=args.hidden_size, seed=args.seed,
                            device=args.device)
    t0 = time.perf_counter()
    predictor = est.train(train)
    results = {"dataset": dataset, "settings": vars(args), "device": str(predictor.device),
               "timegrad_train_seconds": time.perf_counter() - t0, "rows": {}}
    runs = ([] if args.skip_ddpm else [("ddpm", None)]) + [(s, n) for n in args.fast_steps
                                                          for s in ("ddim", "dpm_solver")]
    for sampler, steps in runs:
        predictor.set_sampler(sampler, steps)
        name = f"TimeGrad {sampler} {steps or 100} steps"
        results["rows"][name] = evaluate(predictor, test, num_samples=args.samples, seed=args.seed)
        print(name, json.dumps(results["rows"][name]), flush=True)
    results["rows"]["DeepAR (GluonTS torch)"] = deepar(train, test, horizon, freq, args.deepar_epochs or args.epochs,
                                                       args.batches_per_epoch, args.samples)
    results["rows"]["seasonal naive"] = seasonal_naive(test, horizon, freq)
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        write_text_atomic(args.out, text)
    return results


if __name__ == "__main__":
    main("exchange_rate")
