"""``multidiff forecast``: forecast a wide CSV with CSDI forecasting or TimeGrad, or run a benchmark
protocol with ``--dataset``."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from .common import add_data_option, add_run_options, add_scale_options, rank_zero, scale_options


def add_parser(sub) -> None:
    p = sub.add_parser("forecast", help="probabilistic forecasting with CSDI or TimeGrad",
                       description="Forecast the numeric columns of a CSV (rows = regular time steps) with CSDI "
                                   "forecasting or TimeGrad, or run the rolling-window protocol on a benchmark.")
    p.add_argument("input", nargs="?", help="wide CSV (or .parquet): a time column plus one column per series")
    p.add_argument("-o", "--output", help="long CSV of the forecast (default: INPUT_forecast.csv)")
    p.add_argument("--time-column", default=None, help="timestamp column (default: the first column)")
    p.add_argument("--freq", help="pandas frequency (default: inferred from the timestamps)")
    p.add_argument("--horizon", type=int, help="steps to forecast (required with INPUT)")
    p.add_argument("--quantiles", type=float, nargs="+", default=[0.1, 0.5, 0.9], help="e.g. --quantiles 0.05 0.5 0.95")
    p.add_argument("--samples", type=int, default=100, help="sample paths per forecast")
    p.add_argument("--dataset", choices=["exchange_rate", "etth1"], help="run the benchmark protocol instead")
    add_data_option(p)
    p.add_argument("--forecaster", choices=["csdi", "timegrad"], default="csdi",
                   help="which model to train (forecast(df, model=...)); default csdi")
    p.add_argument("--max-time", type=float, default=120.0,
                   help="training budget in seconds (default 120); 0 for none (TimeGrad then runs --epochs)")
    p.add_argument("--context-length", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="timegrad: epochs (default 20, or until --max-time)")
    p.add_argument("--batches-per-epoch", type=int, default=None, help="default 100")
    p.add_argument("--batch-size", type=int, default=None, help="default: csdi 16, timegrad 64")
    p.add_argument("--hidden-size", type=int, default=None, help="timegrad: LSTM cells (default 40)")
    add_run_options(p, "sampler steps (default: csdi 10 with dpm_solver; timegrad all 100 with ddpm)")
    p.set_defaults(sampler=None)
    p.add_argument("--plot", help="also draw a fan chart PNG here")
    p.add_argument("--progress", action="store_true", help="show Lightning's progress bar while training")
    p.add_argument("--verbose", action="store_true", help="show Lightning's messages and warnings while training")
    add_scale_options(p)
    p.set_defaults(func=run)


def _estimator_kwargs(args, budget: bool = True) -> dict:
    """The options given, under each estimator's own names (unset ones keep the estimator's defaults);
    without ``budget``, leave out ``--max-time`` (for ``forecast(..., max_time=...)``, which applies it)."""
    max_time = (args.max_time or None) if budget else None
    if args.forecaster == "csdi":
        if args.hidden_size is not None:
            raise ValueError("--hidden-size is a TimeGrad option; add --forecaster timegrad")
        names = {"context_length": args.context_length, "epochs": args.epochs,
                 "batches_per_epoch": args.batches_per_epoch, "batch_size": args.batch_size,
                 "sampler": args.sampler or "dpm_solver", "sampler_steps": args.sampler_steps if args.sampler else args.sampler_steps or 10,
                 "progress": args.progress or args.verbose, **({"max_time": max_time} if budget else {})}
        if scale_options(args):
            from dataclasses import replace

            from ..tasks.forecasting.csdi import DEFAULT_TRAIN_CONFIG
            names["train_config"] = replace(DEFAULT_TRAIN_CONFIG, **scale_options(args))
    else:
        names = {"context_length": args.context_length, "max_epochs": args.epochs,
                 "num_batches_per_epoch": args.batches_per_epoch, "batch_size": args.batch_size,
                 "hidden_size": args.hidden_size, "sampler": args.sampler or "ddpm", "sampler_steps": args.sampler_steps,
                 "progress": args.progress, "verbose": args.verbose}
        trainer = scale_options(args)  # Lightning's Trainer takes the same options
        if trainer.get("accelerator") == "auto":
            del trainer["accelerator"]  # the estimator picks it from --device
        if max_time is not None:
            names = {**names, "max_epochs": args.epochs or 10**6}
            trainer["max_time"] = {"seconds": max_time}
        names["trainer_kwargs"] = trainer or None
    return {"device": args.device, **{k: v for k, v in names.items() if v is not None or k == "sampler_steps"}}


def _load_predictor(args):
    """A predictor saved by ``--save-model`` (either kind: the folder says which)."""
    from gluonts.model.predictor import Predictor

    predictor = Predictor.deserialize(Path(args.model), device=args.device)
    if args.sampler:
        predictor.set_sampler(args.sampler, args.sampler_steps)
    return predictor


def _estimator(args, freq: str, horizon: int, target_dim: int):
    from ..tasks.forecasting import CSDIForecastEstimator, TimeGradEstimator

    cls = CSDIForecastEstimator if args.forecaster == "csdi" else TimeGradEstimator
    return cls(freq=freq, prediction_length=horizon, target_dim=target_dim, seed=args.seed, **_estimator_kwargs(args))


def run(args) -> int:
    if args.dataset:
        return _benchmark(args)
    if not args.input or not args.horizon:
        raise ValueError("give an INPUT csv and --horizon N, or --dataset exchange_rate|etth1")
    import pandas as pd

    from ..datasets.frames import read_table, write_csv_atomic
    from ..tasks.forecasting import forecast

    src = Path(args.input)
    df = read_table(src)
    time_column = args.time_column or df.columns[0]
    if time_column not in df.columns:
        raise ValueError(f"--time-column {time_column!r} is not a column of {src}; columns: {list(df.columns)[:10]}")
    df = df.set_index(pd.DatetimeIndex(pd.to_datetime(df.pop(time_column)), name=time_column))
    predictor = _load_predictor(args) if args.model else None
    with warnings.catch_warnings():
        if predictor is None and args.save_model:
            from ..datasets.gluonts_adapters import SKIPPED_COLUMNS, frame_index, values_to_dataset

            values, columns, index, freq = frame_index(df, args.freq, allow_all_nan_columns=False)
            warnings.filterwarnings("ignore", message=f".*{SKIPPED_COLUMNS}", category=UserWarning)  # said once
            predictor = _estimator(args, freq, args.horizon, len(columns)).train(values_to_dataset(values, index, freq))
            if rank_zero():
                predictor.serialize(Path(args.save_model))
        kwargs = {} if predictor else _estimator_kwargs(args, budget=False)
        result = forecast(df, args.horizon, n_samples=args.samples, quantiles=args.quantiles, freq=args.freq,
                          model=args.forecaster, max_time=args.max_time or None, predictor=predictor,
                          seed=args.seed, **kwargs)
    if not rank_zero():  # the other processes of a data-parallel run: rank 0 writes the results
        return 0
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_forecast.csv")
    write_csv_atomic(result.to_long(), out)
    if args.plot:
        from ..tasks.forecasting import fan_chart

        fan_chart(result, args.plot)
    print(f"wrote {out} ({args.horizon} steps x {result.mean.shape[1]} series, quantiles {args.quantiles})")
    return 0


def _benchmark(args) -> int:
    from ..core.checkpoint import write_text_atomic
    from ..datasets.gluonts_adapters import load_benchmark
    from ..tasks.forecasting import evaluate

    df, train, test, freq, horizon = load_benchmark(args.dataset, args.data)
    if args.model:
        predictor = _load_predictor(args)
    else:
        predictor = _estimator(args, freq, horizon, df.shape[1]).train(train)
        if args.save_model and rank_zero():
            predictor.serialize(Path(args.save_model))
    metrics = {"dataset": args.dataset, "forecaster": args.forecaster, **_sampler(predictor),
               **evaluate(predictor, test, num_samples=args.samples, seed=args.seed)}
    if not rank_zero():
        return 0
    text = json.dumps(metrics, indent=1)
    print(text)
    if args.json:
        write_text_atomic(args.json, text)
    return 0


def _sampler(predictor) -> dict:
    if hasattr(predictor, "sampler_steps"):  # CSDIForecastPredictor
        return {"sampler": predictor.sampler, "sampler_steps": predictor.sampler_steps}
    return {"sampler": predictor.model.sampler, "sampler_steps": predictor.model.sampler_steps}
